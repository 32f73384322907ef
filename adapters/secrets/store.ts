/**
 * Secrets Manager, reduced to what the cluster needs: create a secret exactly once
 * (the loser of a race reads the winner's), read one, and list a prefix. Values
 * never go to logs or workflow history: callers get them back only in memory.
 */
import {
  CreateSecretCommand,
  GetSecretValueCommand,
  ListSecretsCommand,
  type SecretsManagerClient,
} from '@aws-sdk/client-secrets-manager';
import { awsErrorCode, classifyAwsError } from '../aws/errors';

export class SecretStore {
  constructor(private readonly client: SecretsManagerClient) {}

  async read(name: string): Promise<string | undefined> {
    try {
      const out = await this.client.send(new GetSecretValueCommand({ SecretId: name }));
      return out.SecretString ?? (out.SecretBinary ? Buffer.from(out.SecretBinary).toString('utf8') : undefined);
    } catch (err) {
      if (awsErrorCode(err) === 'ResourceNotFoundException') return undefined;
      throw classifyAwsError(err, `reading secret ${name}`);
    }
  }

  /**
   * Creates `name` with `make()`'s value unless it exists. CreateSecret is the
   * arbiter: it fails with ResourceExistsException for every racer but one, and
   * those read the winner's value, so all callers end up with the same secret.
   */
  async createOnce(name: string, make: () => string, description: string): Promise<{ value: string; created: boolean }> {
    const existing = await this.read(name);
    if (existing !== undefined) return { value: existing, created: false };
    const value = make();
    try {
      await this.client.send(new CreateSecretCommand({ Name: name, SecretString: value, Description: description }));
      return { value, created: true };
    } catch (err) {
      if (awsErrorCode(err) !== 'ResourceExistsException') throw classifyAwsError(err, `creating secret ${name}`);
    }
    // Lost the race. Right after creation a read can briefly miss it: retry a little.
    for (let attempt = 0; attempt < 10; attempt++) {
      const winner = await this.read(name);
      if (winner !== undefined) return { value: winner, created: false };
      await new Promise((r) => setTimeout(r, 100 * (attempt + 1)));
    }
    throw new Error(`secret ${name} exists but cannot be read yet; retry`);
  }

  /** Names of the secrets whose name starts with `prefix`. */
  async listNames(prefix: string): Promise<string[]> {
    const names: string[] = [];
    let token: string | undefined;
    do {
      let out;
      try {
        out = await this.client.send(new ListSecretsCommand({ Filters: [{ Key: 'name', Values: [prefix] }], NextToken: token }));
      } catch (err) {
        throw classifyAwsError(err, `listing secrets under ${prefix}`);
      }
      // The name filter is a prefix match on AWS; filter again so an emulator's looser match cannot leak others.
      for (const s of out.SecretList ?? []) if (s.Name?.startsWith(prefix)) names.push(s.Name);
      token = out.NextToken;
    } while (token);
    return names.sort();
  }
}
