/**
 * The workflow interceptor modules every bundle of our workflows must include (the worker's
 * own bundle, the tests' shared one, replay): without them runs still work, but their
 * activities carry no summary in the Web UI.
 */
export const WORKFLOW_INTERCEPTOR_MODULES: string[] = [require.resolve('../workflows/interceptors')];

/**
 * Evaluated once for all runs (the SDK's preloadModules, in its reused V8 context) instead of once per
 * cached run: a worker caches hundreds of runs, and each copy of our workflow modules cost it memory. Safe
 * because no module of workflows/ keeps state at module level (a run's state lives in its own closures),
 * and none calls a workflow API while loading; the SDK freezes what they export.
 */
export const WORKFLOW_PRELOAD_MODULES: string[] = [require.resolve('../workflows')];
