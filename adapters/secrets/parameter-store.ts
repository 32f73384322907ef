/**
 * cluster.secrets.provider "aws-parameter-store": one SecureString parameter per name,
 * `<prefix><name>` (the prefix is a path from the root, e.g. "/nstance/demo/"). Standard tier:
 * values up to 4 KB, as in Nstance.
 */
import {
  DeleteParameterCommand,
  DescribeParametersCommand,
  GetParameterCommand,
  PutParameterCommand,
  type SSMClient,
} from '@aws-sdk/client-ssm';
import { awsErrorCode, classifyAwsError } from '../aws/errors';
import { checkSecretName, readWinner, type SecretStore } from './store';

const STANDARD_VALUE_LIMIT = 4096;

export class ParameterStoreSecretStore implements SecretStore {
  readonly provider = 'aws-parameter-store' as const;

  constructor(
    private readonly client: SSMClient,
    readonly prefix: string,
  ) {}

  locate(name: string): string {
    return `${this.prefix}${checkSecretName(name)}`;
  }

  async get(name: string): Promise<string | undefined> {
    const id = this.locate(name);
    try {
      const out = await this.client.send(new GetParameterCommand({ Name: id, WithDecryption: true }));
      if (out.Parameter?.Type !== 'SecureString') {
        throw new Error(`parameter ${id} is a ${out.Parameter?.Type ?? 'missing'} parameter: a secret must be a SecureString (plaintext parameters are not secrets)`);
      }
      return out.Parameter.Value ?? '';
    } catch (err) {
      if (awsErrorCode(err) === 'ParameterNotFound') return undefined;
      if (!awsErrorCode(err)) throw err;
      throw classifyAwsError(err, `reading parameter ${id}`);
    }
  }

  private async write(name: string, value: string, overwrite: boolean, description?: string): Promise<void> {
    const id = this.locate(name);
    if (Buffer.byteLength(value, 'utf8') > STANDARD_VALUE_LIMIT) {
      throw new Error(`secret ${id} is ${Buffer.byteLength(value, 'utf8')} bytes: a standard Parameter Store value holds at most ${STANDARD_VALUE_LIMIT}`);
    }
    await this.client.send(new PutParameterCommand({ Name: id, Value: value, Type: 'SecureString', Tier: 'Standard', Overwrite: overwrite, Description: description }));
  }

  async put(name: string, value: string): Promise<void> {
    try {
      await this.write(name, value, true);
    } catch (err) {
      if (!awsErrorCode(err)) throw err;
      throw classifyAwsError(err, `writing parameter ${this.locate(name)}`);
    }
  }

  async delete(name: string): Promise<boolean> {
    const id = this.locate(name);
    try {
      await this.client.send(new DeleteParameterCommand({ Name: id }));
      return true;
    } catch (err) {
      if (awsErrorCode(err) === 'ParameterNotFound') return false;
      throw classifyAwsError(err, `deleting parameter ${id}`);
    }
  }

  async list(under = ''): Promise<string[]> {
    const prefix = `${this.prefix}${under}`;
    const names: string[] = [];
    let token: string | undefined;
    do {
      let out;
      try {
        out = await this.client.send(
          new DescribeParametersCommand({ ParameterFilters: [{ Key: 'Name', Option: 'BeginsWith', Values: [prefix] }], MaxResults: 50, NextToken: token }),
        );
      } catch (err) {
        throw classifyAwsError(err, `listing parameters under ${prefix}`);
      }
      for (const p of out.Parameters ?? []) if (p.Name?.startsWith(prefix) && p.Type === 'SecureString') names.push(p.Name.slice(this.prefix.length));
      token = out.NextToken;
    } while (token);
    return names.sort();
  }

  async createIfAbsent(name: string, make: () => string, description: string): Promise<{ value: string; created: boolean }> {
    const existing = await this.get(name);
    if (existing !== undefined) return { value: existing, created: false };
    const value = make();
    try {
      // Overwrite false: Parameter Store refuses every racer but one with ParameterAlreadyExists.
      await this.write(name, value, false, description);
      return { value, created: true };
    } catch (err) {
      if (awsErrorCode(err) !== 'ParameterAlreadyExists') {
        if (!awsErrorCode(err)) throw err;
        throw classifyAwsError(err, `creating parameter ${this.locate(name)}`);
      }
    }
    return { value: await readWinner(() => this.get(name), this.locate(name)), created: false };
  }
}
