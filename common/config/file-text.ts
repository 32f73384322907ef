/**
 * The template checks shared by `files` and `certificates` strings: the userdata template
 * language's problems, plus the one thing a file may not use, the registration nonce.
 */
import type { z } from 'zod';
import { templateReferences } from '../template';
import { templateTextProblems } from './args';
import { isPlainObject } from './fields';

export type Ctx = z.core.$RefinementCtx;

/** Template problems of one string, plus the one thing files may not use: the nonce. */
export function fileTextProblems(text: string): string[] {
  const problems = templateTextProblems(text);
  try {
    if (templateReferences(text).some((ref) => ref[0] === 'Nonce')) {
      problems.push('{{ .Nonce }} is the registration secret and only goes in userdata; files may not contain it');
    }
  } catch {
    /* syntax problems are already listed */
  }
  return problems;
}

export function checkText(text: string, ctx: Ctx, path: (string | number)[]): void {
  for (const message of fileTextProblems(text)) ctx.addIssue({ code: 'custom', path, message });
}

export function checkJsonStrings(value: unknown, ctx: Ctx, path: (string | number)[]): void {
  if (typeof value === 'string') checkText(value, ctx, path);
  else if (Array.isArray(value)) value.forEach((v, i) => checkJsonStrings(v, ctx, [...path, i]));
  else if (isPlainObject(value)) for (const [k, v] of Object.entries(value)) checkJsonStrings(v, ctx, [...path, k]);
}
