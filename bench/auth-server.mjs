/**
 * The HTTP authentication and ACL server of the B-auth case: answers every request "allow" with
 * `X-Cache: -1`, so that auth-http asks once per client and topic and then reuses the answer. Prints
 * its port on the first line of stdout.
 */
import { createServer } from 'node:http';

const server = createServer((req, res) => {
  req.resume();
  req.on('end', () => {
    res.writeHead(200, { 'content-type': 'text/plain', 'x-cache': '-1' });
    res.end('allow');
  });
});
server.keepAliveTimeout = 60_000;
server.listen(0, '127.0.0.1', () => {
  process.stdout.write(`${server.address().port}\n`);
});
for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => server.close(() => process.exit(0)));
