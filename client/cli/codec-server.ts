/** The `nstance codec-server` command, registered by client/cli/main.ts. */
import { readFileSync } from 'node:fs';
import { Command, InvalidArgumentError, Option } from 'commander';
import { Connection } from '@temporalio/client';
import { clientConnectionOptions, temporalSettingsFromEnv } from '../../adapters/temporal/connection-settings';
import { NstancePayloadCodec } from '../../adapters/temporal/payload-codec';
import { payloadKeyRingFromEnv } from '../../adapters/temporal/payload-keys';
import { parseDuration } from '../../common/duration';
import { startCodecServer, type CodecServerAuth } from '../../workers/codec-server';
import { DEFAULT_LOGIN_TTL_MS } from '../../workers/codec-login';

export const CODEC_SERVER_TOKEN_ENV = 'NSTANCE_CODEC_SERVER_TOKEN';
export const DEFAULT_CODEC_SERVER_PORT = 8234;

interface CodecServerFlags {
  host: string;
  port: number;
  uiOrigin: string[];
  auth?: 'token' | 'temporal' | 'none';
  tokenFile?: string;
  unauthenticatedBeyondLoopback?: boolean;
  loginTtl: number;
  secureCookie?: boolean;
}

export function codecServerCommand(): Command {
  return new Command('codec-server')
    .description(
      'serve the Temporal codec endpoint (POST /encode, /decode) so the Web UI shows decrypted payloads ' +
        '(env: NSTANCE_PAYLOAD_KEY[_FILE], NSTANCE_PAYLOAD_OLD_KEYS, NSTANCE_CODEC_SERVER_TOKEN; TEMPORAL_* for --auth temporal)',
    )
    .option('--host <host>', 'address to listen on', '127.0.0.1')
    .option('--port <port>', 'port to listen on', parsePort, DEFAULT_CODEC_SERVER_PORT)
    .option('--ui-origin <origin...>', 'browser origins allowed to call it (the Web UI)', ['http://localhost:8233', 'http://127.0.0.1:8233'])
    .addOption(
      new Option('--auth <mode>', 'token: a bearer token (--token-file or NSTANCE_CODEC_SERVER_TOKEN); temporal: the UI\'s auth header, accepted when Temporal accepts it for the namespace; none: loopback only (default: token when one is given, else none)').choices(['token', 'temporal', 'none']),
    )
    .option('--token-file <file>', 'file of accepted bearer tokens, one a line')
    .option('--login-ttl <duration>', 'with --auth token: how long a browser stays signed in after GET /login (e.g. 8h, 30m)', parseLoginTtl, DEFAULT_LOGIN_TTL_MS)
    .option('--secure-cookie', 'with --auth token: mark the login cookie Secure (browsers reach this server over https, through a TLS proxy)')
    .option('--unauthenticated-beyond-loopback', 'let --auth none listen on a non-loopback address (a container whose port is published on loopback only)')
    .action(async (flags: CodecServerFlags) => runCodecServer(flags));
}

async function runCodecServer(flags: CodecServerFlags): Promise<void> {
  const keys = payloadKeyRingFromEnv();
  if (!keys) throw new Error('NSTANCE_PAYLOAD_CODEC=off: there is nothing for a codec server to decode');
  const tokens = tokensFrom(flags.tokenFile);
  const mode = flags.auth ?? (tokens.length > 0 ? 'token' : 'none');
  let connection: Connection | undefined;
  let auth: CodecServerAuth;
  if (mode === 'token') auth = { mode, tokens };
  else if (mode === 'none') auth = { mode };
  else {
    // Its own API key would stand in for the user's: the user's header must be the only credential sent.
    const settings = temporalSettingsFromEnv();
    connection = await Connection.connect(clientConnectionOptions({ ...settings, apiKey: undefined }));
    const service = connection;
    auth = {
      mode,
      authorize: async (namespace, authorization) => {
        await service.withMetadata({ authorization }, () => service.workflowService.describeNamespace({ namespace }));
        return true;
      },
    };
  }
  const server = await startCodecServer({ codec: new NstancePayloadCodec(keys), auth, allowedOrigins: flags.uiOrigin, host: flags.host, port: flags.port, unauthenticatedBeyondLoopback: flags.unauthenticatedBeyondLoopback, loginTtlMs: flags.loginTtl, secureCookie: flags.secureCookie, log: console.error });
  console.log(`nstance codec-server on ${server.url} (auth ${mode}, key ${keys.current.id}, ${keys.byId.size - 1} old keys; UI origins ${flags.uiOrigin.join(', ')})`);
  if (mode === 'token') console.log(`  browsers sign in at ${server.url}/login with the token (a session cookie; the Web UI must include cross-origin credentials)`);
  await new Promise<void>((resolve) => {
    process.once('SIGINT', resolve);
    process.once('SIGTERM', resolve);
  });
  await server.close();
  await connection?.close();
}

function tokensFrom(file: string | undefined): string[] {
  const fromEnv = process.env[CODEC_SERVER_TOKEN_ENV];
  let lines: string[] = [];
  if (file) {
    try {
      lines = readFileSync(file, 'utf8').split('\n');
    } catch (err) {
      throw new Error(`--token-file: cannot read ${file}: ${(err as Error).message}`, { cause: err });
    }
  }
  return [...lines, ...(fromEnv ? [fromEnv] : [])].map((line) => line.trim()).filter((line) => line !== '' && !line.startsWith('#'));
}

function parseLoginTtl(text: string): number {
  let ms: number;
  try {
    ms = parseDuration(text);
  } catch (err) {
    throw new InvalidArgumentError((err as Error).message);
  }
  if (ms < 60_000 || ms > 7 * 86_400_000) throw new InvalidArgumentError(`--login-ttl must be between 1m and 7d, not ${text}`);
  return ms;
}

function parsePort(text: string): number {
  const port = Number(text);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new InvalidArgumentError('port must be 0-65535');
  return port;
}
