// The slice of the `reflect-metadata` API that @peculiar/x509's dependency
// injection (tsyringe) needs at load time. Installing the full polyfill
// package would add a dependency for three functions; this must be imported
// before @peculiar/x509 (src/security/x509.ts does that).
type Key = unknown;
type Store = Map<string | symbol | undefined, Map<Key, unknown>>;

const stores = new WeakMap<object, Store>();

function ownMap(target: object, property: string | symbol | undefined, create: boolean): Map<Key, unknown> | undefined {
  let store = stores.get(target);
  if (!store) {
    if (!create) return undefined;
    store = new Map();
    stores.set(target, store);
  }
  let map = store.get(property);
  if (!map && create) {
    map = new Map();
    store.set(property, map);
  }
  return map;
}

interface ReflectMetadata {
  defineMetadata(key: Key, value: unknown, target: object, property?: string | symbol): void;
  getOwnMetadata(key: Key, target: object, property?: string | symbol): unknown;
  getMetadata(key: Key, target: object, property?: string | symbol): unknown;
}

const api: ReflectMetadata = {
  defineMetadata(key, value, target, property) {
    ownMap(target, property, true)!.set(key, value);
  },
  getOwnMetadata(key, target, property) {
    return ownMap(target, property, false)?.get(key);
  },
  getMetadata(key, target, property) {
    for (let t: object | null = target; t; t = Object.getPrototypeOf(t) as object | null) {
      const map = ownMap(t, property, false);
      if (map?.has(key)) return map.get(key);
    }
    return undefined;
  },
};

const R = Reflect as unknown as Partial<ReflectMetadata>;
if (typeof R.getMetadata !== "function") Object.assign(Reflect, api);
