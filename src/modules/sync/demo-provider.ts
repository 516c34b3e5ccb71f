/**
 * The demo bank: a realistic, deterministic history so a new user sees syncs, budgets and
 * alerts without Plaid credentials (the default outside production when none are configured).
 *
 * Every day's transactions are a pure function of (item seed, date): pay every other Friday,
 * rent on the 1st, utilities and subscriptions on fixed days, groceries, dining, transport and
 * shopping on pseudo-random days. It speaks /transactions/sync's protocol: the first sync
 * returns 90 days of history; later syncs return the days since, the last two days as pending;
 * a pending transaction is `modified` when it posts, and a card hold is `removed` instead.
 * Amounts use Plaid's sign (positive = money out). Cursors are `demo1:<last date>[:<target>:<offset>]`.
 */
import { createHash, randomUUID } from 'node:crypto';
import { ProviderError, type BankProvider, type ProviderAccount, type ProviderTransaction, type SyncPage } from './provider.ts';

const HISTORY_DAYS = 90;
const PENDING_DAYS = 2;
const DAY_MS = 86_400_000;

type Account = 'checking' | 'savings' | 'credit';

interface Template {
  account: Account;
  name: string;
  merchant: string | null;
  primary: string;
  detailed: string;
  min: number;
  max: number;
  /** A card hold: removed (not posted) when it settles. */
  hold?: boolean;
}

const t = (account: Account, merchant: string, primary: string, detailed: string, min: number, max: number, hold = false): Template => ({
  account, name: merchant.toUpperCase(), merchant, primary, detailed, min, max, hold,
});

const GROCERIES = [
  t('credit', 'Whole Foods Market', 'FOOD_AND_DRINK', 'FOOD_AND_DRINK_GROCERIES', 38, 165),
  t('credit', "Trader Joe's", 'FOOD_AND_DRINK', 'FOOD_AND_DRINK_GROCERIES', 25, 110),
  t('credit', 'Safeway', 'FOOD_AND_DRINK', 'FOOD_AND_DRINK_GROCERIES', 20, 95),
];
const DINING = [
  t('credit', 'Starbucks', 'FOOD_AND_DRINK', 'FOOD_AND_DRINK_COFFEE', 4.5, 12),
  t('credit', 'Chipotle Mexican Grill', 'FOOD_AND_DRINK', 'FOOD_AND_DRINK_FAST_FOOD', 11, 28),
  t('credit', 'Sweetgreen', 'FOOD_AND_DRINK', 'FOOD_AND_DRINK_RESTAURANT', 13, 32),
  t('credit', 'The Local Bistro', 'FOOD_AND_DRINK', 'FOOD_AND_DRINK_RESTAURANT', 38, 96),
];
const TRANSPORT = [
  t('credit', 'Uber', 'TRANSPORTATION', 'TRANSPORTATION_TAXIS_AND_RIDE_SHARES', 9, 42),
  t('credit', 'Shell', 'TRANSPORTATION', 'TRANSPORTATION_GAS', 32, 64, true),
];
const SHOPPING = [
  t('credit', 'Amazon', 'GENERAL_MERCHANDISE', 'GENERAL_MERCHANDISE_ONLINE_MARKETPLACES', 12, 140),
  t('credit', 'Target', 'GENERAL_MERCHANDISE', 'GENERAL_MERCHANDISE_SUPERSTORES', 18, 120),
  t('credit', 'CVS Pharmacy', 'MEDICAL', 'MEDICAL_PHARMACIES_AND_SUPPLEMENTS', 8, 45),
];

const FIXED: { day: number; template: Template; amount: number }[] = [
  { day: 1, template: t('checking', 'Rent', 'RENT_AND_UTILITIES', 'RENT_AND_UTILITIES_RENT', 0, 0), amount: 1850 },
  { day: 5, template: t('credit', 'Netflix', 'ENTERTAINMENT', 'ENTERTAINMENT_TV_AND_MOVIES', 0, 0), amount: 15.49 },
  { day: 12, template: t('credit', 'Spotify', 'ENTERTAINMENT', 'ENTERTAINMENT_MUSIC_AND_AUDIO', 0, 0), amount: 11.99 },
  { day: 15, template: t('checking', 'PG&E', 'RENT_AND_UTILITIES', 'RENT_AND_UTILITIES_GAS_AND_ELECTRICITY', 0, 0), amount: 0 },
  { day: 20, template: t('checking', 'Comcast Xfinity', 'RENT_AND_UTILITIES', 'RENT_AND_UTILITIES_INTERNET_AND_CABLE', 0, 0), amount: 79.99 },
  { day: 25, template: t('checking', 'Credit Card Payment', 'LOAN_PAYMENTS', 'LOAN_PAYMENTS_CREDIT_CARD_PAYMENT', 0, 0), amount: 1200 },
  { day: 25, template: t('credit', 'Payment Thank You', 'TRANSFER_IN', 'TRANSFER_IN_ACCOUNT_TRANSFER', 0, 0), amount: -1200 },
  { day: 28, template: t('checking', 'Transfer to Savings', 'TRANSFER_OUT', 'TRANSFER_OUT_SAVINGS', 0, 0), amount: 400 },
  { day: 28, template: t('savings', 'Transfer from Checking', 'TRANSFER_IN', 'TRANSFER_IN_SAVINGS', 0, 0), amount: -400 },
];
const PAYROLL = t('checking', 'Acme Corp Payroll', 'INCOME', 'INCOME_WAGES', 0, 0);

/** A small deterministic generator (mulberry32) seeded from a string. */
function random(seed: string): () => number {
  let a = createHash('sha256').update(seed).digest().readUInt32LE(0);
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let x = Math.imul(a ^ (a >>> 15), 1 | a);
    x = (x + Math.imul(x ^ (x >>> 7), 61 | x)) ^ x;
    return ((x ^ (x >>> 14)) >>> 0) / 4_294_967_296;
  };
}

const cents = (n: number) => Math.round(n * 100) / 100;
const isoDate = (ms: number) => new Date(ms).toISOString().slice(0, 10);
const dayMs = (date: string) => Date.parse(`${date}T00:00:00Z`);

interface DemoTransaction extends ProviderTransaction {
  hold: boolean;
}

interface Change {
  kind: 'added' | 'modified' | 'removed';
  tx: DemoTransaction;
}

export interface DemoProviderOptions {
  /** The demo's clock (tests move it forward). */
  now?: () => Date;
}

export class DemoProvider implements BankProvider {
  readonly name = 'demo' as const;
  private readonly now: () => Date;

  constructor(opts: DemoProviderOptions = {}) {
    this.now = opts.now ?? (() => new Date());
  }

  async createLinkToken() {
    return { linkToken: `link-demo-${randomUUID()}`, expiration: new Date(this.now().getTime() + 4 * 3600_000).toISOString() };
  }

  /** Any public token links a demo bank; the token seeds its history, so the same token gives the same bank. */
  async exchangePublicToken(publicToken: string, userId: string) {
    const seed = createHash('sha256').update(publicToken).digest('hex').slice(0, 16);
    const itemId = `demo-item-${createHash('sha256').update(`${userId}:${publicToken}`).digest('hex').slice(0, 24)}`;
    return { accessToken: `access-demo-${seed}`, itemId, institutionName: 'Demo Bank' };
  }

  async getAccounts(accessToken: string): Promise<ProviderAccount[]> {
    const seed = this.seedOf(accessToken);
    const rnd = random(`${seed}:accounts:${isoDate(this.now().getTime())}`);
    const mask = (n: number) => String(1000 + Math.floor(random(`${seed}:mask:${n}`)() * 9000));
    const acct = (suffix: string, name: string, type: string, subtype: string, balance: number, i: number): ProviderAccount => ({
      externalId: `${seed}-${suffix}`, name, officialName: `Demo Bank ${name}`, mask: mask(i), type, subtype,
      currentBalance: cents(balance), currency: 'USD',
    });
    return [
      acct('chk', 'Everyday Checking', 'depository', 'checking', 2400 + rnd() * 1800, 1),
      acct('sav', 'High-Yield Savings', 'depository', 'savings', 8200 + rnd() * 600, 2),
      acct('cc', 'Rewards Credit Card', 'credit', 'credit card', 600 + rnd() * 900, 3),
    ];
  }

  async syncPage(accessToken: string, cursor: string | null, count: number): Promise<SyncPage> {
    const seed = this.seedOf(accessToken);
    const today = dayMs(isoDate(this.now().getTime()));
    const parsed = this.parseCursor(cursor, today);
    const target = parsed.target ?? today;
    const changes = this.changes(seed, parsed.through, target, parsed.initial);
    const page = changes.slice(parsed.offset, parsed.offset + count);
    const end = parsed.offset + page.length;
    const hasMore = end < changes.length;
    const pick = (kind: Change['kind']) => page.filter((c) => c.kind === kind).map((c) => strip(c.tx));
    return {
      added: pick('added'),
      modified: pick('modified'),
      removed: page.filter((c) => c.kind === 'removed').map((c) => ({ externalId: c.tx.externalId, accountExternalId: c.tx.accountExternalId })),
      accounts: hasMore ? [] : await this.getAccounts(accessToken),
      nextCursor: hasMore ? `demo1:${parsed.initial ? 'init' : isoDate(parsed.through)}:${isoDate(target)}:${end}` : `demo1:${isoDate(target)}`,
      hasMore,
    };
  }

  async verifyWebhook(): Promise<boolean> {
    // The demo bank sends no webhooks; nothing claiming to be one is trusted.
    return false;
  }

  private seedOf(accessToken: string): string {
    const m = /^access-demo-([0-9a-f]{16})$/.exec(accessToken);
    if (!m) throw new ProviderError('INVALID_INPUT', 'INVALID_ACCESS_TOKEN', 'not a demo access token', 400, false);
    return m[1]!;
  }

  /** `initial`: the first sync (no cursor), which delivers the history and no settlements. */
  private parseCursor(cursor: string | null, today: number): { through: number; target?: number; offset: number; initial: boolean } {
    if (!cursor) return { through: today - HISTORY_DAYS * DAY_MS, offset: 0, initial: true };
    const m = /^demo1:(init|\d{4}-\d{2}-\d{2})(?::(\d{4}-\d{2}-\d{2}):(\d+))?$/.exec(cursor);
    if (!m || (m[1] === 'init' && !m[2])) throw new ProviderError('INVALID_INPUT', 'INVALID_CURSOR', 'the cursor is not valid', 400, false);
    const target = m[2] ? dayMs(m[2]) : undefined;
    const initial = m[1] === 'init';
    const through = initial ? target! - HISTORY_DAYS * DAY_MS : dayMs(m[1]!);
    return { through, target, offset: m[3] ? Number(m[3]) : 0, initial };
  }

  /** Everything that changed between a sync through `through` and one at `target`. */
  private changes(seed: string, through: number, target: number, initial: boolean): Change[] {
    const out: Change[] = [];
    if (target <= through) return out;
    const postedBy = (day: number, at: number) => day <= at - PENDING_DAYS * DAY_MS;
    // Pending at the last sync and settled since: posted (modified), or a hold that disappears.
    for (let day = initial ? target + DAY_MS : through - (PENDING_DAYS - 1) * DAY_MS; day <= through; day += DAY_MS) {
      if (postedBy(day, through) || !postedBy(day, target)) continue;
      for (const tx of this.day(seed, day, target)) out.push({ kind: tx.hold ? 'removed' : 'modified', tx });
    }
    for (let day = through + DAY_MS; day <= target; day += DAY_MS) {
      for (const tx of this.day(seed, day, target)) {
        if (tx.hold && !tx.pending) continue; // a hold never posts as itself
        out.push({ kind: 'added', tx });
      }
    }
    return out;
  }

  /** The transactions of one day, as seen from `asOf` (pending in the last two days). */
  private day(seed: string, day: number, asOf: number): DemoTransaction[] {
    const date = isoDate(day);
    const d = new Date(day);
    const rnd = random(`${seed}:${date}`);
    const pending = day > asOf - PENDING_DAYS * DAY_MS;
    const list: { template: Template; amount: number }[] = [];
    for (const f of FIXED) {
      if (d.getUTCDate() !== f.day) continue;
      const amount = f.amount || cents(70 + random(`${seed}:${date}:utility`)() * 90);
      list.push({ template: f.template, amount });
    }
    // Pay every other Friday (the parity of the week number is fixed per seed).
    const week = Math.floor(day / (7 * DAY_MS));
    if (d.getUTCDay() === 5 && week % 2 === (seed.charCodeAt(0) % 2)) list.push({ template: PAYROLL, amount: -3250 });
    const maybe = (p: number, pool: Template[]) => {
      const roll = rnd();
      const which = pool[Math.floor(rnd() * pool.length)]!;
      const amount = cents(which.min + rnd() * (which.max - which.min));
      if (roll < p) list.push({ template: which, amount });
    };
    maybe(0.3, GROCERIES);
    maybe(0.65, DINING);
    maybe(0.35, TRANSPORT);
    maybe(0.22, SHOPPING);
    return list.map(({ template, amount }, i) => ({
      externalId: `demo_${seed}_${date}_${i}`,
      accountExternalId: `${seed}-${template.account === 'checking' ? 'chk' : template.account === 'savings' ? 'sav' : 'cc'}`,
      amount,
      currency: 'USD',
      date,
      name: template.name,
      merchantName: template.merchant,
      pending: pending,
      category: { primary: template.primary, detailed: template.detailed },
      hold: template.hold === true,
    }));
  }
}

function strip(tx: DemoTransaction): ProviderTransaction {
  const { hold: _hold, ...rest } = tx;
  return rest;
}
