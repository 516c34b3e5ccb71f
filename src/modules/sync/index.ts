/** Builds bank sync from configuration: the provider, the token cipher, and the service over them. */
import type { Config } from '../../config.ts';
import type { Db } from '../../db/client.ts';
import type { Metrics } from '../../observability/metrics.ts';
import { TokenCipher, resolveTokenKey } from './crypto.ts';
import { DemoProvider } from './demo-provider.ts';
import type { BankProvider } from './provider.ts';
import { SyncService, type SyncLogger } from './service.ts';

export function createBankProvider(config: Config): BankProvider | undefined {
  switch (config.bankSync.provider) {
    case 'plaid':
      return lazyPlaidProvider(config.bankSync.plaid);
    case 'demo':
      return new DemoProvider();
    case 'none':
      return undefined;
  }
}

/**
 * The Plaid SDK takes more than a second to load; it is loaded on the first call, so a service
 * on the demo provider (or none) never pays for it. Credentials were checked by config.ts.
 */
function lazyPlaidProvider(plaid: Config['bankSync']['plaid']): BankProvider {
  let loaded: Promise<BankProvider> | undefined;
  const provider = () => (loaded ??= import('./plaid-provider.ts').then((m) => new m.PlaidProvider(plaid)));
  return {
    name: 'plaid',
    createLinkToken: async (...args) => (await provider()).createLinkToken(...args),
    exchangePublicToken: async (...args) => (await provider()).exchangePublicToken(...args),
    getAccounts: async (...args) => (await provider()).getAccounts(...args),
    syncPage: async (...args) => (await provider()).syncPage(...args),
    verifyWebhook: async (...args) => (await provider()).verifyWebhook(...args),
    load: async () => void (await provider()),
  };
}

export interface BankSyncDeps {
  db: Db;
  metrics?: Metrics;
  logger?: SyncLogger;
  /** Replaces the configured provider (tests). */
  provider?: BankProvider;
}

/** The sync service, or undefined when bank sync is off. */
export function createBankSync(config: Config, deps: BankSyncDeps): SyncService | undefined {
  const provider = deps.provider ?? createBankProvider(config);
  if (!provider) return undefined;
  return new SyncService(deps.db, {
    provider,
    cipher: new TokenCipher(resolveTokenKey(config)),
    pageSize: config.bankSync.plaid.syncPageSize,
    onSync: deps.metrics ? (status) => deps.metrics!.plaidSyncs.inc({ status }) : undefined,
    logger: deps.logger,
  });
}
