/** The JWT secret: JWT_SECRET, or (outside production) a generated one persisted under DATA_DIR. */
import type { Config } from '../../config.ts';
import { persistedSecret, randomString } from '../../lib/secrets.ts';

const JWT_SECRET_FILE = randomString('jwt-secret', 48, 32);

export function resolveJwtSecret(config: Config): string {
  if (config.auth.jwtSecret) return config.auth.jwtSecret;
  if (config.isProduction) throw new Error('JWT_SECRET is required in production');
  return persistedSecret(config.database.dataDir, JWT_SECRET_FILE);
}
