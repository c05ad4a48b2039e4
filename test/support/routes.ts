import { METHOD_METADATA, PATH_METADATA } from '@nestjs/common/constants';
import { ModulesContainer } from '@nestjs/core';
import type { NestFastifyApplication } from '@nestjs/platform-fastify';

/** One route handler of the API: its controller class, its method and a readable name. */
export interface RouteHandler {
  route: string;
  controller: object;
  handler: object;
}

/** Every route handler of every controller the API serves (for tests that check what each declares). */
export function routeHandlers(api: NestFastifyApplication): RouteHandler[] {
  const found: RouteHandler[] = [];
  for (const mod of api.get(ModulesContainer).values()) {
    for (const ctrl of mod.controllers.values()) {
      const controller = ctrl.metatype as object;
      const proto = (ctrl.metatype as { prototype: Record<string, unknown> }).prototype;
      for (const name of Object.getOwnPropertyNames(proto)) {
        const handler = proto[name];
        if (typeof handler !== 'function' || Reflect.getMetadata(METHOD_METADATA, handler) === undefined) continue;
        const route = `${String(Reflect.getMetadata(PATH_METADATA, controller))}/${String(Reflect.getMetadata(PATH_METADATA, handler))} (${ctrl.name}.${name})`;
        found.push({ route, controller, handler: handler as object });
      }
    }
  }
  return found;
}
