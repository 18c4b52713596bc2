import { createServer } from 'node:http';

/**
 * The peers benchmark's floor: a bare node:http server, a process of its own, that answers
 * every request with its body. `node --import tsx bench/peers/floor.ts <port>`; prints `READY`
 * once listening on 127.0.0.1.
 */
const port = Number(process.argv[2]);
const server = createServer((req, res) => {
  const chunks: Buffer[] = [];
  req.on('data', (c: Buffer) => chunks.push(c));
  req.on('end', () => {
    const body = Buffer.concat(chunks);
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': body.length });
    res.end(body);
  });
});
server.keepAliveTimeout = 60_000;
server.listen(port, '127.0.0.1', () => process.stdout.write('READY\n'));
process.once('SIGTERM', () => server.close(() => process.exit(0)));
