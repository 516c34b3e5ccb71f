/**
 * Whose quota a request spends. A valid token means its user (`user:<id>`); otherwise the client
 * address. request.ip already honours X-Forwarded-For only as far as TRUST_PROXY allows (Fastify's
 * trustProxy is configured from it in app.ts), so an invented header changes nothing by default.
 */
import { isIPv4, isIPv6 } from 'node:net';
import type { Policy } from './policies.ts';

const MAX_CLIENT_ID_LENGTH = 80;

/**
 * The address as a rate-limit key. IPv4-mapped IPv6 becomes plain IPv4; other IPv6 addresses are
 * grouped by their /64, the block one subscriber typically holds, so rotating addresses inside it
 * does not buy a fresh quota.
 */
export function addressKey(ip: string | undefined): string {
  if (!ip) return 'unknown';
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(ip);
  if (mapped && isIPv4(mapped[1]!)) return mapped[1]!;
  // Stryker disable next-line ConditionalExpression: equivalent, an IPv4 address is printable and short, so the last line returns it unchanged too
  if (isIPv4(ip)) return ip;
  if (isIPv6(ip)) return `${expandIPv6(ip).slice(0, 4).join(':')}::/64`;
  // Only a trusted proxy can put a non-address here; keep the key short and printable.
  return ip.replace(/[^\x21-\x7e]/g, '?').slice(0, MAX_CLIENT_ID_LENGTH);
}

function expandIPv6(ip: string): string[] {
  // Stryker disable next-line StringLiteral: equivalent, split always yields a head, and the tail default is only read without '::', where it lands after the four groups kept
  const [head = '', tail = ''] = ip.split('%')[0]!.toLowerCase().split('::');
  const h = head ? head.split(':') : [];
  // Stryker disable next-line ArrayDeclaration: equivalent, an empty tail only follows at least seven groups, after the four kept
  const t = tail ? tail.split(':') : [];
  // An embedded IPv4 tail (::1.2.3.4) takes two groups; only the first four groups matter here.
  // Stryker disable next-line StringLiteral: equivalent, without '::' the eight groups are all there and 8 - 8 - 0 is 0
  const missing = ip.includes('::') ? 8 - h.length - t.length : 0;
  return [...h, ...new Array<string>(Math.max(0, missing)).fill('0'), ...t].map((g) => g.replace(/^0+(?=.)/, ''));
}

export function clientId(policy: Policy, userId: string | null, ip: string | undefined): string {
  if (policy.key === 'client' && userId) return `user:${userId}`;
  return addressKey(ip);
}
