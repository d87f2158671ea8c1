// Echo side of the floor ping-pong: `node echo.mjs <tcp|unix> <socket path, for unix>`.
// Listens on 127.0.0.1 (an ephemeral port) or on the Unix socket, prints "READY <port|path>",
// echoes every byte back, and exits when its parent closes stdin or the connection ends.
import { createServer } from "node:net";

const [kind, path] = process.argv.slice(2);
const server = createServer({ noDelay: true }, (sock) => {
  sock.setNoDelay(true);
  sock.on("data", (buf) => sock.write(buf));
  sock.on("close", () => process.exit(0));
  sock.on("error", () => process.exit(0));
});
const ready = () => {
  const addr = server.address();
  process.stdout.write(`READY ${typeof addr === "string" ? addr : addr.port}\n`);
};
if (kind === "unix") server.listen(path, ready);
else server.listen(0, "127.0.0.1", ready);
process.stdin.on("end", () => process.exit(0));
process.stdin.resume();
