'use strict';
// socket.io 4 baseline for the fan-out benchmark.
//
// A client joins a room with the event `join` (with an acknowledgement); a
// `m` event carries a benchmark payload ("@@R000|..."), whose first
// characters after "@@" name the room, and the server sends it to the whole
// room, sender included, with `io.to(room).emit('m', payload)`.
//
// WebSocket transport only, no compression. Prints "ready on http://HOST:PORT"
// on stderr. Usage: node socketio_server.js [--port N]

const http = require('node:http');
const { Server } = require('socket.io');

const portIndex = process.argv.indexOf('--port');
const port = portIndex > 0 ? Number(process.argv[portIndex + 1]) : 0;

const server = http.createServer((request, response) => {
  response.writeHead(404).end();
});
const io = new Server(server, {
  transports: ['websocket'],
  perMessageDeflate: false,
  httpCompression: false,
  serveClient: false,
});

io.on('connection', (socket) => {
  socket.on('join', (room, ack) => {
    socket.join(String(room));
    if (typeof ack === 'function') ack();
  });
  socket.on('m', (payload) => {
    if (typeof payload !== 'string' || !payload.startsWith('@@')) return;
    io.to(payload.slice(2, 6)).emit('m', payload);
  });
});

server.listen(port, '127.0.0.1', () => {
  const address = server.address();
  process.stderr.write(`ready on http://${address.address}:${address.port}\n`);
});

for (const signal of ['SIGTERM', 'SIGINT']) {
  process.on(signal, () => process.exit(0));
}
