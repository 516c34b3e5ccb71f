/**
 * /api/v1/plaid: link a bank (link-token, exchange-token), list the caller's items with their
 * sync status, ask for a sync (202: it runs in the background), and Plaid's webhook.
 */
import { z } from 'zod';
import type { FastifyPluginAsyncZod, ZodTypeProvider } from 'fastify-type-provider-zod';
import type { FastifyRequest } from 'fastify';
import { AppError, unauthorized, unprocessable } from '../../lib/errors.ts';
import { QueueUnavailableError, type EnqueueOptions } from '../../lib/queue.ts';
import { accountSchema, accountView } from '../accounts/schemas.ts';
import { ProviderError } from './provider.ts';
import { syncDedupeKey, type PlaidItemRow, type SyncService } from './service.ts';
import { handlePlaidWebhook, plaidWebhookBody } from './webhooks.ts';

const itemSchema = z.object({
  id: z.uuid(),
  item_id: z.string(),
  provider: z.string(),
  institution_name: z.string().nullable(),
  status: z.string().describe('active, login_required (re-link through Plaid Link update mode) or error'),
  last_error: z.string().nullable(),
  last_synced_at: z.string().nullable(),
  account_count: z.number().int().optional(),
  created_at: z.string(),
});

function itemView(row: PlaidItemRow & { accountCount?: number }): z.infer<typeof itemSchema> {
  return {
    id: row.id,
    item_id: row.itemId,
    provider: row.provider,
    institution_name: row.institutionName,
    status: row.status,
    last_error: row.lastError,
    last_synced_at: row.lastSyncedAt?.toISOString() ?? null,
    ...(row.accountCount !== undefined && { account_count: row.accountCount }),
    created_at: row.createdAt.toISOString(),
  };
}

const syncAccepted = z.object({ job_id: z.string(), item_id: z.uuid(), status: z.literal('queued') });

/** Provider errors as HTTP answers: the caller's mistake is a 422; the provider being down, a 503. */
function providerProblem(err: unknown): unknown {
  if (!(err instanceof ProviderError)) return err;
  if (err.retryable) return new AppError(503, `The bank data provider is unavailable (${err.code}); try again shortly`);
  return unprocessable(`The bank data provider refused the request (${err.code}): ${err.displayMessage ?? err.message}`);
}

const itemParams = z.object({ item_id: z.uuid() });

const routes: FastifyPluginAsyncZod = async (app) => {
  const common = { tags: ['plaid'], security: [{ bearer: [] }] };
  const auth = { onRequest: app.requireUser };
  const syncService = (): SyncService => {
    if (!app.bankSync) throw new AppError(503, 'Bank sync is not configured on this server (BANK_SYNC_PROVIDER=none)');
    return app.bankSync;
  };
  const enqueueSync = (itemId: string, opts: EnqueueOptions = {}) =>
    app.jobs.enqueue('sync_transactions', { item_id: itemId }, { dedupeKey: syncDedupeKey(itemId), ...opts }).catch((err: unknown) => {
      if (err instanceof QueueUnavailableError) throw new AppError(503, 'The job queue is unavailable; try again shortly');
      throw err;
    });

  app.post(
    '/link-token',
    {
      ...auth,
      schema: {
        ...common,
        summary: 'A Plaid Link token for the caller (with the demo provider, any public token can then be exchanged).',
        response: { 200: z.object({ link_token: z.string(), expiration: z.string(), provider: z.enum(['plaid', 'demo']) }) },
      },
    },
    async (request) => {
      const sync = syncService();
      const token = await sync.createLinkToken(request.userId!).catch((err: unknown) => {
        throw providerProblem(err);
      });
      return { link_token: token.linkToken, expiration: token.expiration, provider: sync.providerName };
    },
  );

  app.post(
    '/exchange-token',
    {
      ...auth,
      schema: {
        ...common,
        summary: "Exchanges Link's public token: stores the item (access token encrypted) and its accounts, and starts the first sync.",
        body: z.object({ public_token: z.string().trim().min(1).max(500) }),
        response: { 201: z.object({ item: itemSchema, accounts: z.array(accountSchema), sync_job_id: z.string().nullable() }) },
      },
    },
    async (request, reply) => {
      const sync = syncService();
      const { item, accounts } = await sync.linkItem(request.userId!, request.body.public_token).catch(async (err: unknown) => {
        await request.audit({ action: 'bank.link', outcome: 'failure', targetType: 'bank_item', details: { reason: (err as Error).name } });
        throw providerProblem(err);
      });
      await request.audit({ action: 'bank.link', outcome: 'success', targetType: 'bank_item', targetId: item.id, details: { accounts: accounts.length } });
      // The item is linked either way; without a queue now, its first sync waits for the next webhook or request.
      const job = await enqueueSync(item.id).catch((err: unknown) => {
        request.log.warn({ item_id: item.id, error: { message: (err as Error).message } }, 'first_sync_not_queued');
        return null;
      });
      return reply
        .code(201)
        .send({ item: itemView({ ...item, accountCount: accounts.length }), accounts: accounts.map(accountView), sync_job_id: job?.id ?? null });
    },
  );

  app.get(
    '/items',
    {
      ...auth,
      schema: {
        ...common,
        summary: "The caller's linked items with their sync status and last error.",
        response: { 200: z.object({ items: z.array(itemSchema) }) },
      },
    },
    async (request) => ({ items: (await syncService().listItems(request.userId!)).map(itemView) }),
  );

  app.post(
    '/sync/:item_id',
    {
      ...auth,
      schema: {
        ...common,
        summary: 'Queues a sync of one item (202). While one is already queued, its job is returned instead of a second.',
        params: itemParams,
        response: { 202: syncAccepted },
      },
    },
    async (request, reply) => {
      const item = await syncService().getItem(request.userId!, request.params.item_id);
      const job = await enqueueSync(item.id).catch(async (err: unknown) => {
        await request.audit({ action: 'bank.sync_request', outcome: 'failure', targetType: 'bank_item', targetId: item.id });
        throw err;
      });
      await request.audit({ action: 'bank.sync_request', outcome: 'success', targetType: 'bank_item', targetId: item.id, details: { job_id: job.id } });
      return reply.code(202).send({ job_id: job.id, item_id: item.id, status: 'queued' as const });
    },
  );

  await app.register(async (webhook) => {
    // Signature verification needs the body exactly as sent, so this route keeps it.
    const rawBodies = new WeakMap<FastifyRequest, string>();
    webhook.removeContentTypeParser('application/json');
    webhook.addContentTypeParser('application/json', { parseAs: 'string' }, (request, body, done) => {
      rawBodies.set(request, body as string);
      try {
        done(null, JSON.parse(body as string));
      } catch (err) {
        (err as Error & { statusCode?: number }).statusCode = 400;
        done(err as Error, undefined);
      }
    });

    webhook.withTypeProvider<ZodTypeProvider>().post(
      '/webhook',
      {
        schema: {
          tags: ['plaid'],
          summary: "Plaid's webhook: SYNC_UPDATES_AVAILABLE queues a sync; ITEM errors are recorded on the item. Verified with the Plaid-Verification JWT.",
          body: plaidWebhookBody,
          response: { 200: z.object({ received: z.literal(true), action: z.string(), job_id: z.string().optional() }) },
        },
      },
      async (request) => {
        const sync = syncService();
        const authentic = await sync.verifyWebhook(rawBodies.get(request) ?? '', request.headers).catch(() => {
          throw new AppError(503, 'The webhook could not be verified now (verification key unavailable); retry later');
        });
        if (!authentic) {
          request.log.warn({ webhook_type: request.body.webhook_type, webhook_code: request.body.webhook_code }, 'plaid_webhook_rejected');
          throw unauthorized('The webhook signature (Plaid-Verification) is missing or not valid');
        }
        const result = await handlePlaidWebhook(request.body, { sync, enqueueSync });
        request.log.info(
          { webhook_type: request.body.webhook_type, webhook_code: request.body.webhook_code, action: result.action, job_id: result.job_id },
          'plaid_webhook_received',
        );
        return { received: true as const, ...result };
      },
    );
  });
};

export default routes;
