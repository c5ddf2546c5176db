// The worker (a Web Worker in browsers, a worker_threads worker in Node): an engine
// (engine.mjs) served over the message protocol (protocol.mjs).
import { serve, selfEndpoint } from './protocol.mjs';
import { createEngine } from './engine.mjs';

serve(await selfEndpoint(), createEngine());
