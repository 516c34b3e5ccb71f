/** Request and response shapes of /api/v1/auth. */
import { z } from 'zod';

/** Emails are compared and stored trimmed and lower-cased (the unique index is on lower(email)). */
export const emailField = z
  .string()
  .trim()
  .toLowerCase()
  .max(254)
  .pipe(z.email({ error: 'must be an email address' }))
  .meta({ format: 'email', description: 'An email address; case and surrounding spaces do not matter' });

export const passwordField = z.string().min(8).max(256);

export const registerBody = z.object({
  email: emailField,
  password: passwordField.describe('8 to 256 characters'),
  // Postgres text cannot hold NUL, and no name needs control characters: refuse them here (422), not in the database (500).
  full_name: z
    .string()
    .trim()
    .min(1)
    .max(200)
    .regex(/^[^\p{Cc}]*$/u, { error: 'must not contain control characters' })
    .nullish(),
});

export const loginBody = z.object({
  email: emailField,
  // Not held to today's minimum at login: a wrong password of any length just fails.
  password: z.string().min(1).max(256),
});

/** Refresh tokens are 43 base64url characters; anything else is simply unknown (401). */
export const refreshTokenBody = z.object({
  refresh_token: z.string().min(1).max(512),
});

export const userResponse = z.object({
  id: z.uuid(),
  email: z.string(),
  full_name: z.string().nullable(),
  is_admin: z.boolean(),
  created_at: z.iso.datetime(),
});

export const tokenPairResponse = z.object({
  access_token: z.string(),
  refresh_token: z.string(),
  token_type: z.literal('bearer'),
  expires_in: z.number().int().describe('Seconds until the access token expires'),
});

export type UserResponse = z.infer<typeof userResponse>;
export type TokenPairResponse = z.infer<typeof tokenPairResponse>;
