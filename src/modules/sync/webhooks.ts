/**
 * What a (verified) Plaid webhook makes us do. SYNC_UPDATES_AVAILABLE enqueues the item's sync
 * (deduplicated: one waits at a time); ITEM ERROR records the error on the item; LOGIN_REPAIRED
 * clears it and syncs. Anything else, or an item we do not know, is acknowledged and ignored —
 * Plaid retries webhooks that are not answered 200.
 */
import { z } from 'zod';
import type { EnqueueOptions, EnqueuedJob } from '../../lib/queue.ts';
import { ProviderError, isRetryable } from './provider.ts';
import type { SyncService } from './service.ts';

export const plaidWebhookBody = z.looseObject({
  webhook_type: z.string().max(100),
  webhook_code: z.string().max(100),
  item_id: z.string().max(200).optional(),
  error: z
    .looseObject({
      error_type: z.string().max(100).optional(),
      error_code: z.string().max(100).optional(),
      error_message: z.string().max(2_000).optional(),
      display_message: z.string().max(2_000).nullable().optional(),
      status: z.number().int().nullable().optional(),
    })
    .nullable()
    .optional(),
});
export type PlaidWebhook = z.infer<typeof plaidWebhookBody>;

export type WebhookAction = 'sync_enqueued' | 'item_error_recorded' | 'ignored';

export interface WebhookDeps {
  sync: SyncService;
  enqueueSync: (itemId: string, opts: EnqueueOptions) => Promise<EnqueuedJob>;
}

export async function handlePlaidWebhook(body: PlaidWebhook, deps: WebhookDeps): Promise<{ action: WebhookAction; job_id?: string }> {
  if (!body.item_id) return { action: 'ignored' };
  const item = await deps.sync.findByProviderItemId(body.item_id);
  if (!item) return { action: 'ignored' };
  const kind = `${body.webhook_type}:${body.webhook_code}`;
  switch (kind) {
    case 'TRANSACTIONS:SYNC_UPDATES_AVAILABLE':
    case 'ITEM:LOGIN_REPAIRED': {
      const job = await deps.enqueueSync(item.id, {});
      return { action: 'sync_enqueued', job_id: job.id };
    }
    case 'ITEM:ERROR':
    case 'ITEM:PENDING_DISCONNECT': {
      const e = body.error ?? {};
      const code = e.error_code ?? (body.webhook_code === 'PENDING_DISCONNECT' ? 'PENDING_DISCONNECT' : 'ITEM_ERROR');
      const type = e.error_type ?? 'ITEM_ERROR';
      const status = e.status ?? null;
      await deps.sync.recordItemError(
        item.id,
        new ProviderError(type, code, e.error_message ?? code, status, isRetryable(type, code, status), e.display_message ?? null),
      );
      return { action: 'item_error_recorded' };
    }
    default:
      return { action: 'ignored' };
  }
}
