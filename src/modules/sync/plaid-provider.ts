/**
 * The Plaid provider, on the official `plaid` SDK. Credentials travel in the SDK's headers;
 * errors leave as ProviderError only (the SDK's axios errors carry the request's headers, secret
 * included, so they are never logged or rethrown as they are).
 *
 * Webhooks are verified as Plaid documents it: the `Plaid-Verification` header is an ES256 JWT
 * whose `kid` names a key served by /webhook_verification_key/get (cached, never an expired one);
 * its `iat` must be at most five minutes old and its `request_body_sha256` must equal the SHA-256
 * of the raw body.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { decodeProtectedHeader, importJWK, jwtVerify, type JWK } from 'jose';
import {
  Configuration,
  CountryCode,
  PlaidApi,
  PlaidEnvironments,
  Products,
  type AccountBase,
  type JWKPublicKey,
  type Transaction,
} from 'plaid';
import type { Config } from '../../config.ts';
import { ProviderError, isRetryable, type BankProvider, type ProviderAccount, type ProviderTransaction, type SyncPage } from './provider.ts';

const WEBHOOK_MAX_AGE = '5 min';
const KEY_CACHE_LIMIT = 32;
/** A cached key is asked for again after this long, so a key Plaid has expired stops being trusted. */
const KEY_CACHE_TTL_MS = 3_600_000;

interface PlaidErrorBody {
  error_type?: string;
  error_code?: string;
  error_message?: string;
  display_message?: string | null;
}

interface AxiosLikeError {
  response?: { status?: number; data?: unknown };
  code?: string;
  message?: string;
}

/** Turns anything the SDK throws into a ProviderError that holds no credentials. */
export function toProviderError(err: unknown): ProviderError {
  if (err instanceof ProviderError) return err;
  const e = (err ?? {}) as AxiosLikeError;
  const status = e.response?.status ?? null;
  const body = (e.response?.data ?? {}) as PlaidErrorBody;
  if (status !== null && body.error_code) {
    const type = body.error_type ?? 'API_ERROR';
    return new ProviderError(type, body.error_code, body.error_message ?? body.error_code, status, isRetryable(type, body.error_code, status), body.display_message ?? null);
  }
  if (status !== null) {
    return new ProviderError('API_ERROR', `HTTP_${status}`, `Plaid answered HTTP ${status}`, status, status === 429 || status >= 500);
  }
  // No answer at all: refused, reset, timed out.
  return new ProviderError('API_ERROR', 'NETWORK_ERROR', `Plaid did not answer (${e.code ?? e.message ?? 'unknown error'})`, null, true);
}

function account(a: AccountBase): ProviderAccount {
  return {
    externalId: a.account_id,
    name: a.name,
    officialName: a.official_name ?? null,
    mask: a.mask ?? null,
    type: String(a.type),
    subtype: a.subtype ? String(a.subtype) : null,
    currentBalance: a.balances.current ?? null,
    currency: a.balances.iso_currency_code ?? null,
  };
}

function transaction(t: Transaction): ProviderTransaction {
  return {
    externalId: t.transaction_id,
    accountExternalId: t.account_id,
    amount: t.amount,
    currency: t.iso_currency_code ?? null,
    date: t.date,
    name: t.name ?? null,
    merchantName: t.merchant_name ?? null,
    pending: t.pending,
    category: t.personal_finance_category ? { primary: t.personal_finance_category.primary, detailed: t.personal_finance_category.detailed } : null,
  };
}

function header(headers: Record<string, string | string[] | undefined>, name: string): string | undefined {
  const v = headers[name.toLowerCase()];
  return Array.isArray(v) ? v[0] : v;
}

export class PlaidProvider implements BankProvider {
  readonly name = 'plaid' as const;
  private readonly client: PlaidApi;
  private readonly keys = new Map<string, { key: JWKPublicKey; fetchedAt: number }>();

  constructor(private readonly config: Config['bankSync']['plaid']) {
    if (!config.clientId || !config.secret) throw new Error('PLAID_CLIENT_ID and PLAID_SECRET are required for the Plaid provider');
    // Plaid retired its Development environment in 2024; PLAID_ENV=development means Production.
    const env = config.env === 'development' ? 'production' : config.env;
    this.client = new PlaidApi(
      new Configuration({
        basePath: config.baseUrl ?? PlaidEnvironments[env],
        baseOptions: {
          timeout: config.timeoutMs,
          headers: { 'PLAID-CLIENT-ID': config.clientId, 'PLAID-SECRET': config.secret },
        },
      }),
    );
  }

  private async call<T>(fn: () => Promise<{ data: T }>): Promise<T> {
    try {
      return (await fn()).data;
    } catch (err) {
      throw toProviderError(err);
    }
  }

  async createLinkToken(userId: string) {
    const data = await this.call(() =>
      this.client.linkTokenCreate({
        client_name: this.config.clientName,
        language: 'en',
        country_codes: this.config.countryCodes as CountryCode[],
        user: { client_user_id: userId },
        products: [Products.Transactions],
        ...(this.config.webhookUrl && { webhook: this.config.webhookUrl }),
      }),
    );
    return { linkToken: data.link_token, expiration: data.expiration };
  }

  async exchangePublicToken(publicToken: string) {
    const exchanged = await this.call(() => this.client.itemPublicTokenExchange({ public_token: publicToken }));
    // The institution's name is a nicety: the item exists even when this lookup fails.
    const item = await this.call(() => this.client.itemGet({ access_token: exchanged.access_token })).catch(() => undefined);
    return { accessToken: exchanged.access_token, itemId: exchanged.item_id, institutionName: item?.item.institution_name ?? null };
  }

  async getAccounts(accessToken: string) {
    const data = await this.call(() => this.client.accountsGet({ access_token: accessToken }));
    return data.accounts.map(account);
  }

  async syncPage(accessToken: string, cursor: string | null, count: number): Promise<SyncPage> {
    const data = await this.call(() =>
      this.client.transactionsSync({ access_token: accessToken, count, ...(cursor ? { cursor } : {}) }),
    );
    return {
      added: data.added.map(transaction),
      modified: data.modified.map(transaction),
      removed: data.removed.map((r) => ({ externalId: r.transaction_id, accountExternalId: r.account_id })),
      accounts: (data.accounts ?? []).map(account),
      nextCursor: data.next_cursor,
      hasMore: data.has_more,
    };
  }

  async verifyWebhook(rawBody: string, headers: Record<string, string | string[] | undefined>): Promise<boolean> {
    if (!this.config.webhookVerification) return true;
    const token = header(headers, 'plaid-verification');
    if (!token) return false;
    let kid: string | undefined;
    try {
      const protectedHeader = decodeProtectedHeader(token);
      if (protectedHeader.alg !== 'ES256') return false;
      kid = protectedHeader.kid;
    } catch {
      return false;
    }
    if (!kid) return false;
    const jwk = await this.verificationKey(kid);
    if (!jwk || jwk.expired_at !== null) return false;
    try {
      const key = await importJWK({ kty: jwk.kty, crv: jwk.crv, x: jwk.x, y: jwk.y } as JWK, 'ES256');
      const { payload } = await jwtVerify(token, key, { algorithms: ['ES256'], maxTokenAge: WEBHOOK_MAX_AGE });
      const claimed = payload.request_body_sha256;
      if (typeof claimed !== 'string') return false;
      const actual = createHash('sha256').update(rawBody, 'utf8').digest('hex');
      return claimed.length === actual.length && timingSafeEqual(Buffer.from(claimed), Buffer.from(actual));
    } catch {
      return false;
    }
  }

  /** The key for `kid`, from the cache or Plaid; undefined when Plaid does not know it. */
  private async verificationKey(kid: string): Promise<JWKPublicKey | undefined> {
    const cached = this.keys.get(kid);
    if (cached && Date.now() - cached.fetchedAt < KEY_CACHE_TTL_MS) return cached.key;
    try {
      const data = await this.call(() => this.client.webhookVerificationKeyGet({ key_id: kid }));
      this.keys.delete(kid);
      if (this.keys.size >= KEY_CACHE_LIMIT) this.keys.delete(this.keys.keys().next().value!);
      this.keys.set(kid, { key: data.key, fetchedAt: Date.now() });
      return data.key;
    } catch (err) {
      if (err instanceof ProviderError && !err.retryable) return undefined;
      throw err;
    }
  }
}
