/**
 * Loaded by path (DataConverter.failureConverterPath) in the worker, the clients and the workflow
 * bundle, so it imports nothing but @temporalio/common. Encoding the common attributes moves a
 * failure's message and stack trace into a payload, which the payload codec then encrypts: error
 * messages name instances and fields, and must not sit in history in plaintext either.
 */
import { DefaultFailureConverter } from '@temporalio/common';

export const failureConverter = new DefaultFailureConverter({ encodeCommonAttributes: true });
