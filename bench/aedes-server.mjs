import net from 'node:net'
import { Aedes } from 'aedes'
const port = Number(process.argv[2] || 18830)
const aedes = await Aedes.createBroker()
const server = net.createServer(aedes.handle)
server.listen(port, '127.0.0.1', () => console.log('aedes listening on 127.0.0.1:' + port))
