/**
 * A local stand-in for Plaid's API (127.0.0.1 only), answering the endpoints Nest Egg uses with
 * the shapes of Plaid's API reference, so tests drive the real `plaid` SDK:
 * /link/token/create, /item/public_token/exchange, /item/get, /accounts/get, /transactions/sync
 * (cursor paging with has_more; added/modified/removed as the net change since the cursor;
 * TRANSACTIONS_SYNC_MUTATION_DURING_PAGINATION when the data changes between pages) and
 * /webhook_verification_key/get (an ES256 key; signWebhook() makes Plaid-Verification headers).
 * Errors are Plaid's error objects: ITEM_LOGIN_REQUIRED (400), rate limits (429), INTERNAL_SERVER_ERROR (500).
 */
import { createHash, randomUUID } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { SignJWT, exportJWK, generateKeyPair, type CryptoKey, type JWK } from 'jose';

export const FAKE_PLAID_CLIENT_ID = 'fake-client-id';
export const FAKE_PLAID_SECRET = 'fake-secret-value';

export interface FakeAccount {
  account_id: string;
  name: string;
  type: 'depository' | 'credit' | 'loan' | 'investment' | 'other';
  subtype: string | null;
  mask: string | null;
  current: number;
}

export interface FakeTransactionInput {
  transaction_id?: string;
  account_id: string;
  /** Plaid's sign: positive = money out. */
  amount: number;
  date: string;
  name: string;
  merchant_name?: string | null;
  pending?: boolean;
  category?: { primary: string; detailed: string };
}

interface StoredTransaction extends Required<Omit<FakeTransactionInput, 'category' | 'merchant_name'>> {
  merchant_name: string | null;
  category: { primary: string; detailed: string } | null;
  createdSeq: number;
  updatedSeq: number;
  removed: boolean;
}

interface FakeItem {
  itemId: string;
  accessToken: string;
  institutionName: string;
  accounts: FakeAccount[];
  txs: Map<string, StoredTransaction>;
  seq: number;
}

export type FakeErrorKind = 'ITEM_LOGIN_REQUIRED' | 'RATE_LIMIT_EXCEEDED' | 'INTERNAL_SERVER_ERROR';

const ERRORS: Record<FakeErrorKind, { status: number; body: Record<string, unknown> }> = {
  ITEM_LOGIN_REQUIRED: {
    status: 400,
    body: {
      error_type: 'ITEM_ERROR',
      error_code: 'ITEM_LOGIN_REQUIRED',
      error_code_reason: null,
      error_message:
        "the login details of this item have changed (credentials, MFA, or required user action) and a user login is required to update this information. use Link's update mode to restore the item to a good state",
      display_message: 'The login details of this item have changed. Please log in again to restore access.',
      documentation_url: 'https://plaid.com/docs/errors/item/#item_login_required',
      suggested_action: null,
    },
  },
  RATE_LIMIT_EXCEEDED: {
    status: 429,
    body: {
      error_type: 'RATE_LIMIT_EXCEEDED',
      error_code: 'TRANSACTIONS_SYNC_LIMIT',
      error_code_reason: null,
      error_message: 'rate limit exceeded for attempts to access this item. please try again later',
      display_message: null,
      documentation_url: 'https://plaid.com/docs/errors/rate-limit-exceeded/',
      suggested_action: null,
    },
  },
  INTERNAL_SERVER_ERROR: {
    status: 500,
    body: {
      error_type: 'API_ERROR',
      error_code: 'INTERNAL_SERVER_ERROR',
      error_code_reason: null,
      error_message: 'an unexpected error occurred',
      display_message: 'Please try again later.',
      documentation_url: 'https://plaid.com/docs/errors/api/#internal_server_error',
      suggested_action: null,
    },
  },
};

function plaidError(status: number, type: string, code: string, message: string) {
  return { status, body: { error_type: type, error_code: code, error_code_reason: null, error_message: message, display_message: null } };
}

interface Cursor {
  s: number;
  e?: number;
  o?: number;
}
const encodeCursor = (c: Cursor) => Buffer.from(JSON.stringify(c)).toString('base64url');
function decodeCursor(s: string | undefined): Cursor | null {
  if (!s) return { s: 0 };
  try {
    const c = JSON.parse(Buffer.from(s, 'base64url').toString('utf8')) as Cursor;
    return Number.isInteger(c.s) ? c : null;
  } catch {
    return null;
  }
}

export interface FakePlaidRequest {
  path: string;
  body: Record<string, unknown>;
  headers: IncomingMessage['headers'];
}

export class FakePlaid extends EventEmitter {
  readonly requests: FakePlaidRequest[] = [];
  private readonly items = new Map<string, FakeItem>();
  private readonly publicTokens = new Map<string, { institutionName: string; accounts: FakeAccount[]; itemId?: string }>();
  private readonly failures = new Map<string, { kind: FakeErrorKind; path: string; remaining: number }[]>();
  private readonly delays = new Map<string, number>();
  private readonly sockets = new Set<import('node:net').Socket>();
  private keyPair!: { privateKey: CryptoKey; publicKey: CryptoKey };
  private publicJwk!: JWK;
  readonly keyId = randomUUID();
  url = '';

  private constructor(private readonly server: Server) {
    super();
  }

  /** Starts on 127.0.0.1, on the first free port of [from, to]. */
  static async start(ports: [number, number] = [18650, 18699]): Promise<FakePlaid> {
    const server = createServer();
    const fake = new FakePlaid(server);
    fake.keyPair = await generateKeyPair('ES256', { extractable: true });
    fake.publicJwk = await exportJWK(fake.keyPair.publicKey);
    server.on('request', (req, res) => void fake.handle(req, res));
    server.on('connection', (s) => {
      fake.sockets.add(s);
      s.on('close', () => fake.sockets.delete(s));
    });
    for (let port = ports[0]; ; port++) {
      if (port > ports[1]) throw new Error(`no free port in ${ports[0]}-${ports[1]}`);
      const ok = await new Promise<boolean>((resolve) => {
        server.once('error', () => resolve(false));
        server.listen(port, '127.0.0.1', () => resolve(true));
      });
      if (ok) {
        fake.url = `http://127.0.0.1:${port}`;
        return fake;
      }
    }
  }

  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  /** A public token that Link would return; exchanging it creates an item with these accounts. */
  createPublicToken(opts: { institutionName?: string; accounts?: FakeAccount[]; itemId?: string } = {}): string {
    const token = `public-sandbox-${randomUUID()}`;
    const accounts = opts.accounts ?? [
      { account_id: `acc-chk-${randomUUID().slice(0, 8)}`, name: 'Plaid Checking', type: 'depository', subtype: 'checking', mask: '0000', current: 110 },
      { account_id: `acc-cc-${randomUUID().slice(0, 8)}`, name: 'Plaid Credit Card', type: 'credit', subtype: 'credit card', mask: '3333', current: 410 },
    ];
    this.publicTokens.set(token, { institutionName: opts.institutionName ?? 'First Platypus Bank', accounts, itemId: opts.itemId });
    return token;
  }

  item(itemId: string): FakeItem {
    const item = [...this.items.values()].find((i) => i.itemId === itemId);
    if (!item) throw new Error(`no fake item ${itemId}`);
    return item;
  }

  accountsOf(itemId: string): FakeAccount[] {
    return this.item(itemId).accounts;
  }

  setBalance(itemId: string, accountId: string, current: number): void {
    const a = this.item(itemId).accounts.find((x) => x.account_id === accountId);
    if (!a) throw new Error(`no account ${accountId}`);
    a.current = current;
  }

  addTransactions(itemId: string, list: FakeTransactionInput[]): string[] {
    const item = this.item(itemId);
    return list.map((t) => {
      const seq = ++item.seq;
      const id = t.transaction_id ?? `tx-${randomUUID()}`;
      item.txs.set(id, {
        transaction_id: id,
        account_id: t.account_id,
        amount: t.amount,
        date: t.date,
        name: t.name,
        merchant_name: t.merchant_name ?? null,
        pending: t.pending ?? false,
        category: t.category ?? null,
        createdSeq: seq,
        updatedSeq: seq,
        removed: false,
      });
      return id;
    });
  }

  modifyTransaction(itemId: string, id: string, patch: Partial<Pick<FakeTransactionInput, 'amount' | 'date' | 'name' | 'pending'>>): void {
    const item = this.item(itemId);
    const t = item.txs.get(id);
    if (!t || t.removed) throw new Error(`no transaction ${id}`);
    Object.assign(t, patch, { updatedSeq: ++item.seq });
  }

  removeTransaction(itemId: string, id: string): void {
    const item = this.item(itemId);
    const t = item.txs.get(id);
    if (!t || t.removed) throw new Error(`no transaction ${id}`);
    t.removed = true;
    t.updatedSeq = ++item.seq;
  }

  /** The transactions Plaid holds for the item now (what a complete sync must mirror). */
  liveTransactions(itemId: string): StoredTransaction[] {
    return [...this.item(itemId).txs.values()].filter((t) => !t.removed);
  }

  /** The next `times` calls of `path` for the item answer this error. */
  failNext(itemId: string, kind: FakeErrorKind, times = 1, path = '/transactions/sync'): void {
    const list = this.failures.get(itemId) ?? [];
    list.push({ kind, path, remaining: times });
    this.failures.set(itemId, list);
  }

  /** Forgets the item's injected errors that were not used up. */
  clearFailures(itemId: string): void {
    this.failures.delete(itemId);
  }

  /** Every /transactions/sync of the item answers after `ms` (0 to stop). */
  delaySync(itemId: string, ms: number): void {
    if (ms > 0) this.delays.set(itemId, ms);
    else this.delays.delete(itemId);
  }

  /** A Plaid-Verification header for a webhook body (iat in seconds; now by default). */
  async signWebhook(body: string, opts: { iat?: number; kid?: string; bodyHash?: string } = {}): Promise<string> {
    const jwt = new SignJWT({ request_body_sha256: opts.bodyHash ?? createHash('sha256').update(body, 'utf8').digest('hex') })
      .setProtectedHeader({ alg: 'ES256', kid: opts.kid ?? this.keyId, typ: 'JWT' });
    jwt.setIssuedAt(opts.iat ?? Math.floor(Date.now() / 1000));
    return jwt.sign(this.keyPair.privateKey);
  }

  count(path: string): number {
    return this.requests.filter((r) => r.path === path).length;
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    let body: Record<string, unknown> = {};
    try {
      body = JSON.parse(Buffer.concat(chunks).toString('utf8') || '{}') as Record<string, unknown>;
    } catch {
      return this.send(res, plaidError(400, 'INVALID_REQUEST', 'INVALID_BODY', 'body could not be parsed as JSON'));
    }
    const path = (req.url ?? '').split('?')[0]!;
    this.requests.push({ path, body, headers: req.headers });
    const clientId = req.headers['plaid-client-id'] ?? body.client_id;
    const secret = req.headers['plaid-secret'] ?? body.secret;
    if (clientId !== FAKE_PLAID_CLIENT_ID || secret !== FAKE_PLAID_SECRET) {
      return this.send(res, plaidError(400, 'INVALID_INPUT', 'INVALID_API_KEYS', 'invalid client_id or secret provided'));
    }
    try {
      const answer = await this.route(path, body);
      this.send(res, answer);
    } catch (err) {
      this.send(res, plaidError(500, 'API_ERROR', 'INTERNAL_SERVER_ERROR', (err as Error).message));
    }
  }

  private send(res: ServerResponse, answer: { status: number; body: Record<string, unknown> }): void {
    if (res.destroyed) return;
    const payload = JSON.stringify({ ...answer.body, request_id: randomUUID().replace(/-/g, '').slice(0, 15) });
    res.writeHead(answer.status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(payload) });
    res.end(payload);
  }

  private byAccessToken(body: Record<string, unknown>): FakeItem | undefined {
    return this.items.get(String(body.access_token ?? ''));
  }

  private injected(item: FakeItem, path: string): { status: number; body: Record<string, unknown> } | undefined {
    const list = this.failures.get(item.itemId);
    const f = list?.find((x) => x.path === path && x.remaining > 0);
    if (!f) return undefined;
    f.remaining--;
    return ERRORS[f.kind];
  }

  private async route(path: string, body: Record<string, unknown>): Promise<{ status: number; body: Record<string, unknown> }> {
    const ok = (b: Record<string, unknown>) => ({ status: 200, body: b });
    switch (path) {
      case '/link/token/create': {
        const user = body.user as { client_user_id?: string } | undefined;
        if (!body.client_name || !user?.client_user_id || !Array.isArray(body.country_codes) || !body.language) {
          return plaidError(400, 'INVALID_REQUEST', 'MISSING_FIELDS', 'the following required fields are missing: client_name, user, country_codes, language');
        }
        return ok({ link_token: `link-sandbox-${randomUUID()}`, expiration: new Date(Date.now() + 4 * 3600_000).toISOString() });
      }
      case '/webhook_verification_key/get': {
        const key = this.verificationKey(String(body.key_id ?? ''));
        if (!key) return plaidError(400, 'INVALID_INPUT', 'INVALID_WEBHOOK_VERIFICATION_KEY_ID', 'invalid key_id provided. note that key_ids are specific to Plaid environments');
        return ok({ key });
      }
      case '/item/public_token/exchange': {
        const tpl = this.publicTokens.get(String(body.public_token ?? ''));
        if (!tpl) return plaidError(400, 'INVALID_INPUT', 'INVALID_PUBLIC_TOKEN', 'provided public token is in an invalid format. expected format: public-<environment>-<identifier>');
        this.publicTokens.delete(String(body.public_token));
        const item: FakeItem = {
          itemId: tpl.itemId ?? `item-${randomUUID()}`,
          accessToken: `access-sandbox-${randomUUID()}`,
          institutionName: tpl.institutionName,
          accounts: tpl.accounts.map((a) => ({ ...a })),
          txs: new Map(),
          seq: 0,
        };
        this.items.set(item.accessToken, item);
        return ok({ access_token: item.accessToken, item_id: item.itemId });
      }
    }
    const item = this.byAccessToken(body);
    if (!item) return plaidError(400, 'INVALID_INPUT', 'INVALID_ACCESS_TOKEN', 'provided access token is in an invalid format. expected format: access-<environment>-<identifier>');
    const injected = this.injected(item, path);
    if (injected) return injected;
    switch (path) {
      case '/item/get':
        return ok({ item: this.itemJson(item), status: { transactions: { last_successful_update: null, last_failed_update: null } } });
      case '/accounts/get':
        return ok({ accounts: item.accounts.map(accountJson), item: this.itemJson(item) });
      case '/transactions/sync':
        return this.sync(item, body);
      default:
        return plaidError(404, 'INVALID_REQUEST', 'NOT_FOUND', `unknown endpoint ${path}`);
    }
  }

  private async sync(item: FakeItem, body: Record<string, unknown>) {
    this.emit('sync', item.itemId);
    const delay = this.delays.get(item.itemId);
    if (delay) await new Promise((r) => setTimeout(r, delay));
    const cursor = decodeCursor(body.cursor as string | undefined);
    if (!cursor) return plaidError(400, 'INVALID_FIELD', 'INVALID_FIELD', 'cursor is not valid');
    const count = Number(body.count ?? 100);
    if (!Number.isInteger(count) || count < 1 || count > 500) return plaidError(400, 'INVALID_REQUEST', 'INVALID_FIELD', 'count must be from 1 to 500');
    const end = cursor.e ?? item.seq;
    const offset = cursor.o ?? 0;
    if (offset > 0 && end !== item.seq) {
      return plaidError(400, 'TRANSACTIONS_ERROR', 'TRANSACTIONS_SYNC_MUTATION_DURING_PAGINATION', 'Underlying transaction data changed since last page was fetched. Please restart pagination from last update.');
    }
    const changes = [...item.txs.values()]
      .filter((t) => t.updatedSeq > cursor.s && t.updatedSeq <= end)
      .sort((a, b) => a.updatedSeq - b.updatedSeq)
      .flatMap((t): { kind: 'added' | 'modified' | 'removed'; t: StoredTransaction }[] => {
        const existed = t.createdSeq <= cursor.s;
        if (!existed) return t.removed ? [] : [{ kind: 'added', t }];
        return [{ kind: t.removed ? 'removed' : 'modified', t }];
      });
    const page = changes.slice(offset, offset + count);
    const hasMore = offset + count < changes.length;
    return {
      status: 200,
      body: {
        transactions_update_status: 'HISTORICAL_UPDATE_COMPLETE',
        accounts: item.accounts.map(accountJson),
        added: page.filter((c) => c.kind === 'added').map((c) => transactionJson(c.t)),
        modified: page.filter((c) => c.kind === 'modified').map((c) => transactionJson(c.t)),
        removed: page.filter((c) => c.kind === 'removed').map((c) => ({ transaction_id: c.t.transaction_id, account_id: c.t.account_id })),
        next_cursor: encodeCursor(hasMore ? { s: cursor.s, e: end, o: offset + count } : { s: end }),
        has_more: hasMore,
      },
    };
  }

  private itemJson(item: FakeItem) {
    return {
      item_id: item.itemId,
      institution_id: 'ins_109508',
      institution_name: item.institutionName,
      webhook: null,
      auth_method: null,
      error: null,
      available_products: ['balance', 'identity'],
      billed_products: ['transactions'],
      products: ['transactions'],
      consented_products: ['transactions'],
      consent_expiration_time: null,
      update_type: 'background',
    };
  }

  /** The public JWK that /webhook_verification_key/get serves for the fake's signing key. */
  verificationKey(kid: string) {
    if (kid !== this.keyId) return undefined;
    return { ...this.publicJwk, alg: 'ES256', kid, use: 'sig', created_at: Math.floor(Date.now() / 1000) - 60, expired_at: null };
  }
}

function accountJson(a: FakeAccount) {
  return {
    account_id: a.account_id,
    balances: { available: a.current, current: a.current, iso_currency_code: 'USD', limit: null, unofficial_currency_code: null },
    mask: a.mask,
    name: a.name,
    official_name: `${a.name} (official)`,
    persistent_account_id: null,
    subtype: a.subtype,
    type: a.type,
  };
}

function transactionJson(t: StoredTransaction) {
  return {
    account_id: t.account_id,
    account_owner: null,
    amount: t.amount,
    authorized_date: t.date,
    authorized_datetime: null,
    check_number: null,
    counterparties: [],
    date: t.date,
    datetime: null,
    iso_currency_code: 'USD',
    location: { address: null, city: null, country: null, lat: null, lon: null, postal_code: null, region: null, store_number: null },
    logo_url: null,
    merchant_entity_id: null,
    merchant_name: t.merchant_name,
    name: t.name,
    payment_channel: 'in store',
    payment_meta: { by_order_of: null, payee: null, payer: null, payment_method: null, payment_processor: null, ppd_id: null, reason: null, reference_number: null },
    pending: t.pending,
    pending_transaction_id: null,
    personal_finance_category: t.category ? { ...t.category, confidence_level: 'VERY_HIGH' } : null,
    personal_finance_category_icon_url: 'https://plaid-category-icons.plaid.com/PFC_OTHER.png',
    transaction_code: null,
    transaction_id: t.transaction_id,
    transaction_type: 'place',
    unofficial_currency_code: null,
    website: null,
  };
}
