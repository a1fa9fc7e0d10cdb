import { lookup } from 'node:dns/promises';
import { isIP } from 'node:net';
import ipaddr from 'ipaddr.js';

/**
 * Where an export may send its webhook (notify_url). Only to public addresses, so that a caller
 * cannot make the service POST into its own network (SSRF): a host that is, or resolves to, any
 * address other than public unicast (loopback, private, link-local, unique-local, CGNAT,
 * 0.0.0.0/8, multicast, IPv4-mapped IPv6, the cloud metadata address 169.254.169.254, ...) is
 * refused, and so is http. Checked when the export is created and again before every delivery
 * (DNS can change), where the request then goes to the very address that was checked.
 * WEBHOOK_ALLOW_PRIVATE lifts both rules (tests, a workstation).
 */

export interface ResolvedAddress {
  address: string;
  family: 4 | 6;
}

/** Why the URL may not be used, in words for the client. */
export class NotifyUrlRefused extends Error {
  override name = 'NotifyUrlRefused';
}

/** Whether an address is public unicast: ipaddr.js names every special range, "unicast" is what is left. */
export function isPublicAddress(address: string): boolean {
  return ipaddr.parse(address).range() === 'unicast';
}

/**
 * The addresses the URL's host stands for, every one of them allowed; NotifyUrlRefused otherwise.
 * `allowPrivate`: any address and http are allowed.
 */
export async function resolveNotifyUrl(url: URL, allowPrivate: boolean): Promise<ResolvedAddress[]> {
  if (url.protocol !== 'https:' && !(allowPrivate && url.protocol === 'http:')) {
    throw new NotifyUrlRefused('Must be an https URL.');
  }
  const host = url.hostname.replace(/^\[(.*)\]$/, '$1');
  const addresses = isIP(host) ? [{ address: host, family: isIP(host) as 4 | 6 }] : await lookUp(host);
  if (!allowPrivate) {
    const refused = addresses.find((a) => !isPublicAddress(a.address));
    if (refused) {
      throw new NotifyUrlRefused(
        `The host ${host} is or resolves to ${refused.address}, which is not a public address (loopback, private, link-local and other special ranges are refused).`,
      );
    }
  }
  return addresses;
}

async function lookUp(host: string): Promise<ResolvedAddress[]> {
  try {
    const found = await lookup(host, { all: true, verbatim: true });
    if (found.length > 0) return found.map((a) => ({ address: a.address, family: a.family as 4 | 6 }));
  } catch {
    // Reported below, whatever the resolver's code.
  }
  throw new NotifyUrlRefused(`The host ${host} does not resolve.`);
}
