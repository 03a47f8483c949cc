// Calls to the farm's API under /web/api: the same routes and envelope as the signed Renderbus API,
// authenticated by the session cookie. A 602 answer (not signed in) goes to hooks.signedOut.

export const hooks = { signedOut: () => {} };

export class ApiError extends Error {
  constructor(code, message) {
    super(message);
    this.code = code;
  }
}

async function envelope(response) {
  let payload;
  try {
    payload = await response.json();
  } catch {
    throw new ApiError(0, `The farm answered ${response.status} without JSON; is the server up?`);
  }
  if (payload.code === 602) {
    hooks.signedOut(payload.message);
    throw new ApiError(602, payload.message);
  }
  if (payload.code !== 200) throw new ApiError(payload.code, payload.message);
  return payload.data;
}

export const HEADERS = { 'Content-Type': 'application/json', 'X-Rayfarm-Web': '1' };

// POST /web/api<path> with a JSON body; the envelope's data, or ApiError with the farm's sentence.
export async function call(path, body = {}) {
  const response = await fetch(`/web/api${path}`, {
    method: 'POST', headers: HEADERS, body: JSON.stringify(body), credentials: 'same-origin',
  });
  return envelope(response);
}

export async function get(path) {
  return envelope(await fetch(path, { credentials: 'same-origin', headers: { Accept: 'application/json' } }));
}

export const API = {
  taskList: '/render/handle/getTaskList/v2',
  taskInfo: '/render/handle/queryTaskInfo/v2',
  frames: '/render/handle/queryTaskFrames',
  thumbnails: '/render/handle/loadingFrameThumbnail',
  log: '/rayfarm/task/log',
  outputs: '/rayfarm/task/outputs',
  stop: '/rendering/task/renderingTask/stopTask',
  start: '/rendering/task/renderingTask/startTask',
  abort: '/render/handle/abandonTask',
  delete: '/render/handle/deleteTask',
  fullSpeed: '/render/handle/fullSpeedRendering',
  priority: '/rendering/task/renderingTask/updateTaskUserLevel',
  limit: '/render/handle/updateTaskLimit',
  overTime: '/render/handle/setTaskOverTimeStop',
  recommitFrames: '/render/handle/recommitTaskFrames',
  workers: '/rayfarm/worker/list',
  workerMode: '/rayfarm/worker/setMode',
  summary: '/rayfarm/farm/summary',
};
