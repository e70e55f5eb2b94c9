// The Files view: the signed-in person's own files.

export function initFiles() {}

export function showFiles() {}

export function hideFiles() {}

export function forgetFiles() {}
