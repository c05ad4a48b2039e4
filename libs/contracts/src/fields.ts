import { z } from 'zod';
import { because } from './route';

/** A UUID as every id in a path or body: exactly 8-4-4-4-12 hexadecimal digits (RFC 4122 text form, any version). */
export const UUID_PATTERN = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
export function isUuid(value: unknown): value is string {
  return typeof value === 'string' && UUID_PATTERN.test(value);
}
/** `what` must be a UUID; `code` overrides the refusal's code (the default is invalid_<field>). */
export const uuid = (what: string, code?: string) =>
  z.string().refine(isUuid, code ? because(code, `${what} must be a UUID (8-4-4-4-12 hexadecimal digits)`) : { message: `${what} must be a UUID (8-4-4-4-12 hexadecimal digits)` });

/** Consul datacenter and node naming: lowercase letters, digits, hyphens; starts with a letter; 1 to 36 characters. */
export const CONSUL_NAME = /^[a-z][a-z0-9-]{0,35}$/;
export const CONSUL_NAME_RULE = '1 to 36 lowercase letters, digits or hyphens, starting with a letter';
/** Azure resource group names: 1-90 letters, digits, underscores, hyphens, periods and parentheses, not ending in a period. */
export const RESOURCE_GROUP = /^[-\w.()]{0,89}[-\w()]$/u;
export const RESOURCE_GROUP_RULE = '1 to 90 letters, digits, underscores, hyphens, periods or parentheses, not ending in a period';

/**
 * The cluster's VNet address space (the managed application's `vnetCidr`): a private (RFC 1918)
 * IPv4 network of /24 to /28, written as its network address. At least /28: Azure keeps five
 * addresses of a subnet, the internal endpoint takes one and the servers up to five. One
 * expression, so the portal (createUiDefinition.json, where it is copied verbatim) and the API
 * refuse the same values.
 */
const OCTET = '(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])';
const PRIVATE_PREFIX = `(10\\.${OCTET}|172\\.(1[6-9]|2[0-9]|3[01])|192\\.168)\\.${OCTET}\\.`;
const NETWORK_AND_PREFIX =
  '(0/24|(0|128)/25|(0|64|128|192)/26|(0|32|64|96|128|160|192|224)/27|(0|16|32|48|64|80|96|112|128|144|160|176|192|208|224|240)/28)';
export const VNET_CIDR_PATTERN = `^${PRIVATE_PREFIX}${NETWORK_AND_PREFIX}$`;
export const VNET_CIDR = new RegExp(VNET_CIDR_PATTERN);
export const DEFAULT_VNET_CIDR = '172.25.16.0/24';
export const VNET_CIDR_RULE = 'a private IPv4 network (10.0.0.0/8, 172.16.0.0/12 or 192.168.0.0/16) of /24 to /28, written as its network address, e.g. 172.25.16.0/24';

/** An ISO 8601 UTC instant as the API writes them. */
export const instant = z.string().meta({ format: 'date-time' });
export const nullableInstant = instant.nullable();
