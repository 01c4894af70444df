// GENERATED from the Rust protocol types (crates/protocol) by
// crates/wasm/tests/typescript.rs: do not edit. Regenerate with `cargo xtask wasm`.

/** Payload of `ack`. */
export interface Ack {
  messageId: string;
}

/** Payload of `auth`. */
export interface Auth {
  token: string;
}

/** Payload of `collaborative_session_update`. */
export interface CollaborativeSession {
  sessionId: string;
  topic: string;
  participants: Array<Participant>;
  activeUsers: number;
}

/** Payload of `error`. */
export interface ErrorPayload {
  code: string;
  message: string;
  refId?: string;
}

/** Payload of `notification`. */
export interface Notification {
  id: string;
  title: string;
  message: string;
  type: NotificationKind;
  priority: Priority;
  actionUrl?: string;
  actionText?: string;
}

export type NotificationKind = 'info' | 'success' | 'warning' | 'error';

export type OverallStatus = 'operational' | 'degraded' | 'maintenance' | 'outage';

export interface Participant {
  userId: string;
  userName: string;
  avatarUrl?: string;
  joinedAt: number;
}

export type Priority = 'low' | 'medium' | 'high';

export interface Services {
  api: boolean;
  database: boolean;
  cache: boolean;
  storage: boolean;
}

export interface StreamPosition {
  offset: number;
  epoch: string;
}

/** Payload of `study_metrics_update`. */
export interface StudyMetrics {
  userId: string;
  studyHours: number;
  progress: number;
  currentTopic?: string;
  sessionDuration: number;
  streak: number;
}

/** Payload of `study_session_end`. */
export interface StudySessionEnd {
  userId: string;
  topic: string;
}

/** Payload of `study_session_start`. */
export interface StudySessionStart {
  userId: string;
  topic: string;
  timestamp?: number;
}

/** Payload of `subscribe`. */
export interface Subscribe {
  channel: string;
  since?: StreamPosition;
}

/** Payload of `subscribed`. */
export interface Subscribed {
  channel: string;
  offset: number;
  epoch: string;
  recovered: boolean;
  missed: number;
}

/** Payload of `system_status`. */
export interface SystemStatus {
  status: OverallStatus;
  services: Services;
  uptime: number;
  lastCheck: number;
}

/** Payload of `unsubscribe`. */
export interface Unsubscribe {
  channel: string;
}

/** Payload of `unsubscribed`. */
export interface Unsubscribed {
  channel: string;
}

/** Payload of `welcome`. */
export interface Welcome {
  connectionId: string;
  userId?: string;
  protocol: number;
  heartbeatIntervalMs: number;
  features: Array<string>;
  serverTime: number;
}

/** Each payload type by its wire `type`. */
export interface MessageTypes {
  study_metrics_update: StudyMetrics;
  collaborative_session_update: CollaborativeSession;
  notification: Notification;
  system_status: SystemStatus;
  study_session_start: StudySessionStart;
  study_session_end: StudySessionEnd;
  welcome: Welcome;
  auth: Auth;
  subscribe: Subscribe;
  subscribed: Subscribed;
  unsubscribe: Unsubscribe;
  unsubscribed: Unsubscribed;
  ack: Ack;
  error: ErrorPayload;
}
