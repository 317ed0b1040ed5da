/**
 * A film's job plan as BullMQ flows: one flow per transition, the transition job the parent of
 * the keyframe jobs it owns (see plan.ts). Pure: builds the objects FlowProducer.addBulk takes.
 */
import type { FlowJob } from 'bullmq';
import { filmSpecToYaml, type FilmSpec } from '../film/spec.ts';
import { QUEUE_NAME } from './connection.ts';
import { childrenOf, type FilmJobPlan } from './plan.ts';
import type { KeyframeJob, KeyframeRef, TransitionJob } from './jobs.ts';

export interface FlowContext {
  readonly spec: FilmSpec;
  /** Absolute work folder, the same path on every machine. */
  readonly workDir: string;
  /** The model the jobs ask for (see modelIdentity in worker.ts). */
  readonly model: string;
  readonly preset?: 'turbo' | 'standard';
}

/** Finished jobs stay a day so that a command that lost its connection can still read results. */
const KEEP = { age: 24 * 3600 };

export function filmFlows(plan: FilmJobPlan, context: FlowContext): FlowJob[] {
  const common = {
    run: plan.run,
    workDir: context.workDir,
    model: context.model,
    ...(context.preset !== undefined ? { preset: context.preset } : {}),
    spec: filmSpecToYaml(context.spec),
  };
  const nameOf = new Map(plan.keyframes.map((keyframe) => [keyframe.jobId, keyframe.name] as const));
  const ref = (jobId: string): KeyframeRef => ({ name: nameOf.get(jobId)!, jobId });
  return plan.transitions.map((transition) => {
    const data: TransitionJob = { kind: 'transition', ...common, index: transition.index, keyframeA: ref(transition.keyframeA), keyframeB: ref(transition.keyframeB) };
    return {
      name: 'transition',
      queueName: QUEUE_NAME,
      data,
      opts: { jobId: transition.jobId, removeOnComplete: KEEP, removeOnFail: KEEP },
      children: childrenOf(plan, transition.jobId).map((keyframe) => {
        const child: KeyframeJob = {
          kind: 'keyframe',
          ...common,
          name: keyframe.name,
          keyframe: keyframe.keyframe,
          transition: keyframe.transition,
          end: keyframe.end,
          ...(keyframe.crossfeedFrom !== undefined ? { crossfeedFrom: ref(keyframe.crossfeedFrom) } : {}),
        };
        return {
          name: 'keyframe',
          queueName: QUEUE_NAME,
          data: child,
          opts: { jobId: keyframe.jobId, failParentOnFailure: true, removeOnComplete: KEEP, removeOnFail: KEEP },
        };
      }),
    };
  });
}
