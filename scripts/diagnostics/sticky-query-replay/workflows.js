// The group workflow's waiting pattern, reduced: a pass (an activity and some CPU), then
// condition(fn, timeout) woken by signals, with a short coalescing wait. See README.md.
const wf = require('@temporalio/workflow');

const { work } = wf.proxyActivities({ startToCloseTimeout: '10s' });
const poke = wf.defineSignal('poke');
const wakeSignal = wf.defineSignal('wake');
const status = wf.defineQuery('status');

async function loopWorkflow(skipSatisfiedConditions) {
  let wake = false;
  let pending = false;
  let passes = 0;
  wf.setHandler(poke, () => void (pending = true));
  wf.setHandler(wakeSignal, () => void (wake = true));
  wf.setHandler(status, () => ({ passes, wake, pending }));
  for (;;) {
    passes++;
    const started = Date.now();
    await work(passes);
    let burn = 0;
    for (let i = 0; i < 2e5; i++) burn += i;
    if (passes % 3 === 0) wake = true;
    // With skipSatisfiedConditions, no timer is started (and cancelled unseen) when fn already holds.
    if (!skipSatisfiedConditions || !(wake || pending)) await wf.condition(() => wake || pending, 3000);
    if (!wake && pending) {
      const left = started + 500 - Date.now();
      if (left > 0) await wf.condition(() => wake, left);
    }
    wake = false;
    pending = false;
    if (passes >= 400) return { passes, burn };
  }
}

module.exports = { loopWorkflow };
