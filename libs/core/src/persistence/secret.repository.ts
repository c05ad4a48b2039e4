import type { Db } from './prisma';
import type { SecretBox } from '../envelope';

/** A cluster's secrets, sealed with envelope encryption before they reach the database. */
export class SecretRepository {
  constructor(private readonly db: Db, private readonly box: SecretBox) {}

  /** Stores a secret unless one of that name exists; returns the stored value either way. */
  async putIfAbsent(clusterId: string, name: string, create: () => string | Promise<string>): Promise<string> {
    const existing = await this.get(clusterId, name);
    if (existing !== null) return existing;
    const sealed = this.box.seal(await create());
    await this.db.clusterSecret.createMany({
      data: [{ clusterId, name, kekId: sealed.kekId, wrappedKey: Buffer.from(sealed.wrappedKey), iv: Buffer.from(sealed.iv), tag: Buffer.from(sealed.tag), ciphertext: Buffer.from(sealed.ciphertext) }],
      skipDuplicates: true,
    });
    const stored = await this.get(clusterId, name);
    if (stored === null) throw new Error(`secret ${name} vanished after being stored`);
    return stored;
  }

  /** Replaces a secret's value (a new server certificate, a rotated key), sealed afresh. */
  async replace(clusterId: string, name: string, value: string): Promise<void> {
    const sealed = this.box.seal(value);
    const row = { kekId: sealed.kekId, wrappedKey: Buffer.from(sealed.wrappedKey), iv: Buffer.from(sealed.iv), tag: Buffer.from(sealed.tag), ciphertext: Buffer.from(sealed.ciphertext) };
    await this.db.clusterSecret.upsert({ where: { clusterId_name: { clusterId, name } }, create: { clusterId, name, ...row }, update: row });
  }

  async get(clusterId: string, name: string): Promise<string | null> {
    const row = await this.db.clusterSecret.findUnique({ where: { clusterId_name: { clusterId, name } } });
    return row ? this.box.open(row) : null;
  }

  async delete(clusterId: string, name: string): Promise<void> {
    await this.db.clusterSecret.deleteMany({ where: { clusterId, name } });
  }

  async deleteAll(clusterId: string): Promise<void> {
    await this.db.clusterSecret.deleteMany({ where: { clusterId } });
  }
}
