export { groupWorkflow } from './group';
export { instanceWorkflow } from './instance';
