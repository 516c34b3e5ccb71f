/**
 * What an audit row keeps of the client: its address masked to its network (IPv4 /24, IPv6 /48),
 * and the family of its user agent (never the full string, which fingerprints a person).
 */
import { isIPv4, isIPv6 } from 'node:net';

/** `203.0.113.77` → `203.0.113.0/24`; `2001:db8:85a3:8d3:1319:8a2e:370:7348` → `2001:db8:85a3::/48`. */
export function maskIp(ip: string | undefined | null): string | null {
  if (!ip) return null;
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(ip);
  const v4 = mapped ? mapped[1]! : ip;
  if (isIPv4(v4)) return `${v4.split('.').slice(0, 3).join('.')}.0/24`;
  const bare = ip.replace(/%.*$/, ''); // a zone id (fe80::1%eth0) is not part of the address
  if (!isIPv6(bare)) return null;
  const groups = expandIpv6(bare).slice(0, 3).map((g) => g.replace(/^0+(?=.)/, ''));
  return `${groups.join(':')}::/48`;
}

/** The eight groups of an IPv6 address (an embedded IPv4 tail is turned into its two groups). */
function expandIpv6(ip: string): string[] {
  let text = ip.toLowerCase();
  const v4 = /(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(text);
  if (v4) {
    const [a, b, c, d] = v4.slice(1).map(Number) as [number, number, number, number];
    text = `${text.slice(0, v4.index)}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const [head, tail] = text.split('::') as [string, string | undefined];
  const left = head ? head.split(':') : [];
  const right = tail ? tail.split(':') : [];
  const fill = tail === undefined ? [] : Array<string>(8 - left.length - right.length).fill('0');
  return [...left, ...fill, ...right];
}

/** Checked in order: the first match names the family. */
const FAMILIES: readonly [RegExp, string][] = [
  [/bot\b|crawler|spider/i, 'bot'],
  [/^curl\//i, 'curl'],
  [/^wget\//i, 'wget'],
  [/python-requests|python-urllib|aiohttp|httpx/i, 'python'],
  [/^(?:node|undici|axios|node-fetch)/i, 'node'],
  [/^go-http-client/i, 'go'],
  [/okhttp/i, 'okhttp'],
  [/postmanruntime/i, 'postman'],
  [/nest-?egg/i, 'nest-egg'],
  [/edg(?:e|a|ios)?\//i, 'edge'],
  [/opr\/|opera/i, 'opera'],
  [/firefox\/|fxios\//i, 'firefox'],
  [/chrome\/|crios\/|chromium\//i, 'chrome'],
  [/safari\//i, 'safari'],
  [/^mozilla\//i, 'browser'],
];

export function userAgentFamily(ua: string | undefined | null): string | null {
  if (!ua) return null;
  for (const [pattern, family] of FAMILIES) if (pattern.test(ua)) return family;
  return 'other';
}
