/** Nest injection tokens for the API's composition root. */
export const CONFIG = Symbol('CONFIG');
export const DB = Symbol('DB');
export const QUEUE = Symbol('QUEUE');
export const REDIS = Symbol('REDIS');
export const AUTHENTICATOR = Symbol('AUTHENTICATOR');
