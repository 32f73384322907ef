/**
 * The payload key of the integration suite and the benchmarks. Fixed (and public: it protects
 * nothing but throwaway test histories) so that histories recorded for the replay suite under it
 * (NSTANCE_RECORD_HISTORIES=1) decode in later runs. Never use it outside tests.
 */
import { PAYLOAD_CODEC_ENV, PAYLOAD_KEY_ENV, PAYLOAD_KEY_FILE_ENV, PAYLOAD_OLD_KEYS_ENV, PAYLOAD_OLD_KEYS_FILE_ENV } from '../../adapters/temporal/payload-keys';

export const TEST_PAYLOAD_KEY = '6sxDn9Hisw65zSEWmk2HTi3IYTqUcmzYodaqsFFVaL0=';

/** Points this process and every child it spawns (workers, the CLI, the fleet) at the test key. */
export function useTestPayloadKey(env: NodeJS.ProcessEnv = process.env): void {
  for (const name of [PAYLOAD_KEY_FILE_ENV, PAYLOAD_OLD_KEYS_ENV, PAYLOAD_OLD_KEYS_FILE_ENV, PAYLOAD_CODEC_ENV]) delete env[name];
  env[PAYLOAD_KEY_ENV] = TEST_PAYLOAD_KEY;
}
