/** cluster.secrets.provider "aws-secrets-manager": one secret per name, `<prefix><name>`. */
import {
  CreateSecretCommand,
  DeleteSecretCommand,
  GetSecretValueCommand,
  ListSecretsCommand,
  PutSecretValueCommand,
  type SecretsManagerClient,
} from '@aws-sdk/client-secrets-manager';
import { awsErrorCode, classifyAwsError } from '../aws/errors';
import { checkSecretName, readWinner, type SecretStore } from './store';

export class SecretsManagerStore implements SecretStore {
  readonly provider = 'aws-secrets-manager' as const;

  constructor(
    private readonly client: SecretsManagerClient,
    readonly prefix: string,
  ) {}

  locate(name: string): string {
    return `${this.prefix}${checkSecretName(name)}`;
  }

  async get(name: string): Promise<string | undefined> {
    const id = this.locate(name);
    try {
      const out = await this.client.send(new GetSecretValueCommand({ SecretId: id }));
      return out.SecretString ?? (out.SecretBinary ? Buffer.from(out.SecretBinary).toString('utf8') : undefined);
    } catch (err) {
      // A secret scheduled for deletion answers InvalidRequestException: it is gone for us.
      if (awsErrorCode(err) === 'ResourceNotFoundException' || awsErrorCode(err) === 'InvalidRequestException') return undefined;
      throw classifyAwsError(err, `reading secret ${id}`);
    }
  }

  async put(name: string, value: string): Promise<void> {
    const id = this.locate(name);
    try {
      await this.client.send(new PutSecretValueCommand({ SecretId: id, SecretString: value }));
      return;
    } catch (err) {
      if (awsErrorCode(err) !== 'ResourceNotFoundException') throw classifyAwsError(err, `writing secret ${id}`);
    }
    try {
      await this.client.send(new CreateSecretCommand({ Name: id, SecretString: value, Description: `nstance secret ${name}` }));
    } catch (err) {
      // Created by someone else in between: write our value over it, as a put does.
      if (awsErrorCode(err) !== 'ResourceExistsException') throw classifyAwsError(err, `creating secret ${id}`);
      await this.client.send(new PutSecretValueCommand({ SecretId: id, SecretString: value })).catch((e: unknown) => {
        throw classifyAwsError(e, `writing secret ${id}`);
      });
    }
  }

  async delete(name: string): Promise<boolean> {
    const id = this.locate(name);
    // Asked first: a forced delete of a missing secret succeeds on some endpoints (moto), so its answer cannot say.
    if ((await this.get(name)) === undefined) return false;
    try {
      await this.client.send(new DeleteSecretCommand({ SecretId: id, ForceDeleteWithoutRecovery: true }));
      return true;
    } catch (err) {
      if (awsErrorCode(err) === 'ResourceNotFoundException') return false;
      throw classifyAwsError(err, `deleting secret ${id}`);
    }
  }

  async list(under = ''): Promise<string[]> {
    const prefix = `${this.prefix}${under}`;
    const names: string[] = [];
    let token: string | undefined;
    do {
      let out;
      try {
        out = await this.client.send(new ListSecretsCommand({ Filters: [{ Key: 'name', Values: [prefix] }], NextToken: token, MaxResults: 100 }));
      } catch (err) {
        throw classifyAwsError(err, `listing secrets under ${prefix}`);
      }
      // The name filter is a prefix match on AWS; filter again so an emulator's looser match cannot leak others.
      for (const s of out.SecretList ?? []) if (s.Name?.startsWith(prefix) && !s.DeletedDate) names.push(s.Name.slice(this.prefix.length));
      token = out.NextToken;
    } while (token);
    return names.sort();
  }

  async createIfAbsent(name: string, make: () => string, description: string): Promise<{ value: string; created: boolean }> {
    const existing = await this.get(name);
    if (existing !== undefined) return { value: existing, created: false };
    const id = this.locate(name);
    const value = make();
    try {
      await this.client.send(new CreateSecretCommand({ Name: id, SecretString: value, Description: description }));
      return { value, created: true };
    } catch (err) {
      if (awsErrorCode(err) !== 'ResourceExistsException') throw classifyAwsError(err, `creating secret ${id}`);
    }
    return { value: await readWinner(() => this.get(name), id), created: false };
  }
}
