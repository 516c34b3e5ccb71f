/** /api/v1/transactions routes: CRUD and the filtered, cursor-paginated list. */
import { z } from 'zod';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { idParams } from '../../lib/schemas.ts';
import {
  createTransactionBody, listTransactionsQuery, transactionPageSchema, transactionSchema, transactionView, updateTransactionBody,
} from './schemas.ts';
import { TransactionService } from './service.ts';

const routes: FastifyPluginAsyncZod = async (app) => {
  const service = new TransactionService(app.database.db);
  const common = { tags: ['transactions'], security: [{ bearer: [] }] };
  const auth = { onRequest: app.requireUser };

  app.post(
    '/',
    {
      ...auth,
      schema: {
        ...common,
        summary: 'Record a transaction (amount negative for money out, positive for money in).',
        body: createTransactionBody,
        response: { 201: transactionSchema },
      },
    },
    async (request, reply) => reply.code(201).send(transactionView(await service.create(request.userId!, request.body))),
  );

  app.get(
    '/',
    {
      ...auth,
      schema: {
        ...common,
        summary: 'List transactions, newest first, with filters; pass next_cursor as cursor for the next page.',
        querystring: listTransactionsQuery,
        response: { 200: transactionPageSchema },
      },
    },
    async (request) => {
      const page = await service.list(request.userId!, request.query);
      return { items: page.items.map(transactionView), next_cursor: page.nextCursor };
    },
  );

  app.get(
    '/:id',
    { ...auth, schema: { ...common, summary: 'Get one transaction.', params: idParams, response: { 200: transactionSchema } } },
    async (request) => transactionView(await service.get(request.userId!, request.params.id)),
  );

  app.patch(
    '/:id',
    {
      ...auth,
      schema: {
        ...common,
        summary: 'Change some fields of a transaction.',
        params: idParams,
        body: updateTransactionBody,
        response: { 200: transactionSchema },
      },
    },
    async (request) => transactionView(await service.update(request.userId!, request.params.id, request.body)),
  );

  app.delete(
    '/:id',
    { ...auth, schema: { ...common, summary: 'Delete a transaction.', params: idParams, response: { 204: z.null() } } },
    async (request, reply) => {
      await service.remove(request.userId!, request.params.id);
      await request.audit({ action: 'transaction.delete', outcome: 'success', targetType: 'transaction', targetId: request.params.id });
      return reply.code(204).send(null);
    },
  );
};

export default routes;
