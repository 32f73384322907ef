export { groupWorkflow } from './group';
export { instanceWorkflow } from './instance';
export { leaderWorkflow } from './leader';
export { gcWorkflow } from './gc';
export { keyRotationWorkflow } from './key-rotation';
