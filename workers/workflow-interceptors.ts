/**
 * The workflow interceptor modules every bundle of our workflows must include (the worker's
 * own bundle, the tests' shared one, replay): without them runs still work, but their
 * activities carry no summary in the Web UI.
 */
export const WORKFLOW_INTERCEPTOR_MODULES: string[] = [require.resolve('../workflows/interceptors')];
