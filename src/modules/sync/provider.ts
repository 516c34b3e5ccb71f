/**
 * The bank-data provider behind bank sync: Plaid (the official SDK) or the demo provider. Shapes
 * follow Plaid's API (amounts positive for money out, as Plaid sends them); the sync service
 * converts them to ours.
 */

export interface ProviderAccount {
  externalId: string;
  name: string;
  officialName: string | null;
  mask: string | null;
  /** Plaid's account type: depository, credit, loan, investment, other, … */
  type: string;
  subtype: string | null;
  /** Current balance as the institution reports it (for credit and loans: the amount owed). */
  currentBalance: number | null;
  currency: string | null;
}

export interface ProviderTransaction {
  externalId: string;
  accountExternalId: string;
  /** Plaid's sign: positive when money leaves the account. */
  amount: number;
  currency: string | null;
  date: string;
  name: string | null;
  merchantName: string | null;
  pending: boolean;
  /** Plaid's personal finance category (primary, detailed), e.g. FOOD_AND_DRINK / FOOD_AND_DRINK_GROCERIES. */
  category: { primary: string; detailed: string } | null;
}

export interface SyncPage {
  added: ProviderTransaction[];
  modified: ProviderTransaction[];
  removed: { externalId: string; accountExternalId: string }[];
  accounts: ProviderAccount[];
  nextCursor: string;
  hasMore: boolean;
}

export interface LinkToken {
  linkToken: string;
  expiration: string;
}

export interface ExchangedItem {
  accessToken: string;
  itemId: string;
  institutionName: string | null;
}

export interface BankProvider {
  readonly name: 'plaid' | 'demo';
  createLinkToken(userId: string): Promise<LinkToken>;
  exchangePublicToken(publicToken: string, userId: string): Promise<ExchangedItem>;
  getAccounts(accessToken: string): Promise<ProviderAccount[]>;
  /** One page of /transactions/sync after `cursor` (null: from the beginning). */
  syncPage(accessToken: string, cursor: string | null, count: number): Promise<SyncPage>;
  /** Checks a webhook's signature; resolves true when it is authentic (or verification is off). */
  verifyWebhook(rawBody: string, headers: Record<string, string | string[] | undefined>): Promise<boolean>;
  /**
   * Loads now what the first call would load (the Plaid SDK: one to two seconds of module loading
   * that blocks the event loop). A worker calls it before it takes jobs, so no job's lock goes
   * unrenewed while the SDK loads.
   */
  load?(): Promise<void>;
}

/**
 * An error from the provider, in Plaid's terms (error_type, error_code, HTTP status). `retryable`
 * says whether trying again later can help: rate limits, the provider's 5xx and network
 * failures can; ITEM_LOGIN_REQUIRED and invalid requests cannot.
 */
export class ProviderError extends Error {
  override name = 'ProviderError';
  constructor(
    readonly type: string,
    readonly code: string,
    message: string,
    readonly httpStatus: number | null,
    readonly retryable: boolean,
    readonly displayMessage: string | null = null,
  ) {
    super(message);
  }

  /** The user must re-authenticate with the bank (Link's update mode). */
  get loginRequired(): boolean {
    return this.code === 'ITEM_LOGIN_REQUIRED' || this.code === 'PENDING_DISCONNECT' || this.code === 'ACCESS_NOT_GRANTED';
  }

  /** The data changed while we paged through it: start again from the first cursor. */
  get mutationDuringPagination(): boolean {
    return this.code === 'TRANSACTIONS_SYNC_MUTATION_DURING_PAGINATION';
  }
}

/** Which Plaid errors are worth another attempt later. */
export function isRetryable(type: string, code: string, httpStatus: number | null): boolean {
  if (type === 'RATE_LIMIT_EXCEEDED' || httpStatus === 429) return true;
  if (type === 'API_ERROR' || type === 'INSTITUTION_ERROR') return true;
  if (code === 'TRANSACTIONS_SYNC_MUTATION_DURING_PAGINATION') return true;
  if (httpStatus !== null && httpStatus >= 500) return true;
  return false;
}
