/** /api/v1/categories routes: list the caller's categories and add one. */
import { z } from 'zod';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { categorySchema, categoryView, createCategoryBody } from './schemas.ts';
import { CategoryService } from './service.ts';

const routes: FastifyPluginAsyncZod = async (app) => {
  const service = new CategoryService(app.database.db);
  const common = { tags: ['categories'], security: [{ bearer: [] }] };

  app.get(
    '/',
    {
      onRequest: app.requireUser,
      schema: { ...common, summary: 'List the categories (defaults included), sorted by name.', response: { 200: z.object({ items: z.array(categorySchema) }) } },
    },
    async (request) => ({ items: (await service.list(request.userId!)).map(categoryView) }),
  );

  app.post(
    '/',
    {
      onRequest: app.requireUser,
      schema: {
        ...common,
        summary: 'Create a category (409 when one of that name, in any case, exists).',
        body: createCategoryBody,
        response: { 201: categorySchema },
      },
    },
    async (request, reply) => reply.code(201).send(categoryView(await service.create(request.userId!, request.body.name))),
  );
};

export default routes;
