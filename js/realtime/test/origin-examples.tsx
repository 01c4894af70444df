// The origin README's examples, unchanged but for their imports: `npm test` type-checks this
// file (tsc -p realtime/tsconfig.test.json), so the package keeps the origin's API.
/* eslint-disable */

import { useWebSocket, useWebSocketMessage } from '../src/react.js';
import type { StudyMetricsPayload } from '../src/index.js';
import { WebSocketClient } from '../src/index.js';

export function MyComponent() {
  const socket = useWebSocket({
    url: 'wss://api.cerebrumbiologyacademy.com/ws',
    reconnect: true,
    heartbeat: 30000,
    onConnect: () => console.log('Connected'),
    onDisconnect: () => console.log('Disconnected'),
    debug: true,
  })

  return (
    <div>
      <p>Status: {socket.status}</p>
      <p>Connected: {socket.isConnected ? 'Yes' : 'No'}</p>
      <p>Latency: {socket.latency}ms</p>
    </div>
  )
}

export function Demo() {
  const socket = useWebSocket({
    url: 'wss://api.cerebrumbiologyacademy.com/ws',
    enableMockMode: true, // Enable mock mode
    debug: true,
  })
  return <p>{socket.status}</p>
}

export function StudyMetrics() {
  const socket = useWebSocket({
    url: 'wss://api.cerebrumbiologyacademy.com/ws',
    enableMockMode: true,
  })

  useWebSocketMessage<StudyMetricsPayload>(socket, 'study_metrics_update', (metrics) => {
    console.log('Study hours:', metrics.studyHours)
    console.log('Progress:', metrics.progress)
    console.log('Streak:', metrics.streak)
  })

  return <div>Study metrics component</div>
}

export function Sender() {
  const socket = useWebSocket({
    url: 'wss://api.cerebrumbiologyacademy.com/ws',
  })

  const handleStudyStart = () => {
    socket.send('study_session_start', {
      userId: 'user-123',
      topic: 'Cell Biology',
      timestamp: Date.now(),
    })
  }

  return <button onClick={handleStudyStart}>Start Study Session</button>
}

export function Manual() {
  const socket = useWebSocket({ url: 'wss://...' })

  // Force reconnect
  socket.reconnect()

  // Disconnect
  socket.disconnect()

  // Check queued messages
  const queued = socket.getQueuedMessages()
  console.log('Queued messages:', queued.length)

  // Clear queue
  socket.clearQueue()
  return null
}

export function direct() {
  const client = new WebSocketClient({
    url: 'wss://api.cerebrumbiologyacademy.com/ws',
    enableMockMode: true,
    debug: true,
  })

  client.connect()

  // Listen to specific message types
  const unsubscribe = client.on('notification', (message) => {
    console.log('Notification:', message.payload)
  })

  // Send a message
  client.send('study_session_start', {
    userId: 'user-123',
    topic: 'Genetics',
  })

  // Cleanup
  unsubscribe()
  client.disconnect()
}
