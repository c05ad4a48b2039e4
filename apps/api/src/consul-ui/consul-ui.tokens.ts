/** Nest injection tokens of the Consul UI single sign-on. */
export const UI_ORIGINS = Symbol('UI_ORIGINS');
export const CONSUL_UI_TOKENS = Symbol('CONSUL_UI_TOKENS');
export const UI_SESSION_GATE = Symbol('UI_SESSION_GATE');
