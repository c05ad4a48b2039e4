export { DEFAULT_VNET_CIDR, VNET_CIDR, VNET_CIDR_PATTERN, VNET_CIDR_RULE } from '../../contracts/src';
