/** Payloads read straight from a history are encoded (encrypted): decode them with the client's data converter. */
import type { Client } from '@temporalio/client';
import type { Payload } from '@temporalio/common';
import { decodeFromPayloadsAtIndex } from '@temporalio/common/lib/internal-non-workflow';

export async function decodedPayload<T>(client: Client, payloads: Payload[] | null | undefined, index = 0): Promise<T> {
  return decodeFromPayloadsAtIndex<T>(client.options.loadedDataConverter, index, payloads);
}
