/**
 * The one data converter of the project: the worker, its workflow bundle, the CLI, the codec server,
 * the test harness's clients and the benchmarks all take it from here, so a payload written by any
 * of them decodes in all the others.
 */
import type { DataConverter } from '@temporalio/common';
import { NstancePayloadCodec } from './payload-codec';
import { payloadKeyRingFromEnv, type PayloadKeyRing } from './payload-keys';

/** Give this to bundleWorkflowCode too: workflow code converts its own failures. */
export const FAILURE_CONVERTER_PATH = require.resolve('./failure-converter');

/** The options a workflow bundle needs so its failures match the worker's converter. */
export const WORKFLOW_BUNDLE_CONVERTER_OPTIONS = { failureConverterPath: FAILURE_CONVERTER_PATH } as const;

/**
 * The project's data converter under a key ring (from the environment by default: see payload-keys.ts).
 * `null` keys mean plaintext payloads (NSTANCE_PAYLOAD_CODEC=off); failures still go through the
 * same converter, so both modes read each other's histories.
 */
export function nstanceDataConverter(keys: PayloadKeyRing | null | undefined = payloadKeyRingFromEnv()): DataConverter {
  return {
    failureConverterPath: FAILURE_CONVERTER_PATH,
    payloadCodecs: keys ? [new NstancePayloadCodec(keys)] : [],
  };
}
