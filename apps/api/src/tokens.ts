/** Nest injection tokens for the API's composition root. */
export const CONFIG = Symbol('CONFIG');
export const DB = Symbol('DB');
export const QUEUE = Symbol('QUEUE');
export const REDIS = Symbol('REDIS');
export const AUTHENTICATOR = Symbol('AUTHENTICATOR');
/** Verifies the console's ID tokens (audience: CONSOLE_CLIENT_ID), as AUTHENTICATOR verifies access tokens. */
export const ID_TOKEN_AUTHENTICATOR = Symbol('ID_TOKEN_AUTHENTICATOR');
export const OIDC_CLIENT = Symbol('OIDC_CLIENT');
