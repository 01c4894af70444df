//! The simulated world: time, the event queue, links, clients, nodes, and the checks.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use cerebrum_core::{
    AuthToken, ClientCore, Command, Config, Event, Outgoing, ReconnectAttempts, TokenTransport,
    TransportEvent,
};
use cerebrum_protocol::{
    Ack, Envelope, MessageId, Notification, NotificationKind, Priority, StudySessionEnd,
    StudySessionStart, decode, session_channel,
};
use cerebrum_server_core::ServerConfig;
use cerebrum_server_core::auth::{JwtKey, mint_hs256_until};
use cerebrum_server_core::broker::{BrokerError, Claimed, Delivery, MemoryBroker};
use cerebrum_server_core::clock::Now;
use cerebrum_server_core::context::Context;
use cerebrum_server_core::hub::ConnId;
use cerebrum_server_core::node::NodeEffect;
use cerebrum_server_core::outbox::Outbox;
use cerebrum_server_core::session::{Effect, Session};

use crate::broker::{NodeId, SimBroker};
use crate::store::SimStore;

/// The size of a simulated world and how hard it is shaken.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct SimConfig {
    /// Server nodes sharing the broker and the store (1–5).
    pub nodes: usize,
    /// Clients (each one connection at a time).
    pub clients: usize,
    /// Distinct users: clients beyond this share users (several connections of one user).
    pub users: usize,
    /// Simulated steps (1–50 ms each) before the world is healed and settled.
    pub steps: u32,
    /// Whether faults are injected (cuts, crashes, outages, store errors, clock jumps).
    pub faults: bool,
    /// A bug planted in the simulated driver, to show that the checks catch it.
    pub plant: Option<Plant>,
}

impl Default for SimConfig {
    fn default() -> Self {
        Self {
            nodes: 3,
            clients: 5,
            users: 3,
            steps: 400,
            faults: true,
            plant: None,
        }
    }
}

impl SimConfig {
    /// The world `seed` picks: 1–3 nodes, 2–6 clients, 1–4 users, 200–600 steps, faults on.
    #[must_use]
    pub fn for_seed(seed: u64) -> Self {
        let mut rng = fastrand::Rng::with_seed(seed ^ 0x5EED_C0DE);
        Self {
            nodes: rng.usize(1..=3),
            clients: rng.usize(2..=6),
            users: rng.usize(1..=4),
            steps: rng.u32(200..=600),
            faults: true,
            plant: None,
        }
    }

    /// The same world with `plant` in the driver.
    #[must_use]
    pub fn with_plant(mut self, plant: Plant) -> Self {
        self.plant = Some(plant);
        self
    }
}

/// Bugs that can be planted in the simulated driver; each breaks one invariant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Plant {
    /// The broker's append takes a message id it took already (breaks exactly-once: a retry
    /// whose first attempt was in flight when its connection died is published twice).
    NonIdempotentAppend,
    /// A publication is acknowledged and never appended (breaks ack-after-effect).
    AckBeforeEffect,
    /// A resumed subscription's replay starts one publication late while saying `recovered`
    /// (breaks no-gap).
    ReplayOffByOne,
    /// A member who left stays in the node's refreshed presence (breaks convergence).
    KeepPresence,
    /// A notification `ack` is answered without being recorded (breaks "never again").
    ForgetNotificationAck,
}

/// What a seed's run did.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct Report {
    /// Frames delivered to clients.
    pub frames: u64,
    /// Publications appended to app channels.
    pub publications: u64,
    /// Messages acknowledged to their senders.
    pub acked: u64,
    /// Faults injected.
    pub faults: u64,
}

/// An invariant broken at a step of a seed.
#[derive(Debug, Clone, thiserror::Error)]
#[error(
    "seed {seed}: invariant `{invariant}` broken at {at_ms} ms: {detail}\n  replay: cargo xtask sim --seed {seed}"
)]
#[non_exhaustive]
pub struct Failure {
    /// The seed.
    pub seed: u64,
    /// Which invariant.
    pub invariant: &'static str,
    /// Simulated time of the violation.
    pub at_ms: u64,
    /// What was seen.
    pub detail: String,
}

/// Runs the world `seed` with `config`; `Err` at the first broken invariant.
///
/// # Errors
/// The first [`Failure`].
pub fn run(seed: u64, config: &SimConfig) -> Result<Report, Failure> {
    let mut world = World::new(seed, config.clone());
    let result = world.run();
    result.map(|()| world.report)
}

const SECRET: &[u8] = b"a-simulated-secret-of-32-bytes!!";
const UNIX_BASE: u64 = 1_750_000_000_000;
const TOPICS: [&str; 2] = ["Genetics", "Ecology"];
const CHATS: [&str; 2] = ["chat:0", "chat:1"];
const PRESENCE_TTL_MS: u64 = 3_000;
const REFRESH_MS: u64 = 1_000;
/// How long a claim stays in progress (the driver's `CLAIM_PENDING`, scaled down).
const CLAIM_PENDING_MS: u64 = 2_000;

type LinkId = u64;

#[derive(Debug)]
enum Ev {
    /// The client's connection attempt reached a node (or found none).
    Open {
        link: LinkId,
    },
    ToServer {
        link: LinkId,
        text: String,
    },
    ToClient {
        link: LinkId,
        text: String,
    },
    /// The link closed under the client with this code.
    ClientClosed {
        link: LinkId,
        code: Option<u16>,
    },
    /// The client's close reached the server.
    ServerClosed {
        link: LinkId,
    },
    /// A broker fan-out delivery reached a node.
    Deliver {
        node: NodeId,
        life: u32,
        delivery: Delivery,
    },
    /// A connection's effect is carried out now.
    Effect {
        node: NodeId,
        life: u32,
        conn: ConnId,
        effect: Effect,
    },
}

struct Link {
    client: usize,
    node: NodeId,
    life: u32,
    conn: Option<ConnId>,
    /// The last due time in each direction (each stays ordered).
    to_server_due: u64,
    to_client_due: u64,
    open: bool,
    /// The resume positions this link's client asked for, per channel.
    since: HashMap<String, Option<u64>>,
    /// The next offset expected per explicitly subscribed channel.
    next: HashMap<String, u64>,
}

struct Client {
    core: ClientCore,
    user: String,
    link: Option<LinkId>,
    /// Ids of `ack: true` chat messages sent.
    sent: HashSet<String>,
    /// Ids of `ack` frames sent for notifications, with the notification's id.
    notification_acks: HashMap<String, String>,
    /// Notifications seen (ids), for the final check.
    notifications: HashSet<String>,
    studying: BTreeSet<&'static str>,
    /// How this client answers notifications.
    acks: Acks,
}

/// How a client answers the notifications it gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Acks {
    /// Most of them, at random (the clients of the run; the rest stays pending).
    Most,
    /// Every one (the final fresh clients: they page through everything still pending).
    All,
}

struct Conn {
    session: Session,
    outbox: Arc<Outbox>,
    link: LinkId,
    inbox: VecDeque<String>,
    effects: VecDeque<Effect>,
    /// An effect is being carried out.
    busy: bool,
    closed: bool,
    /// The link is gone; the connection ends once its effect in progress is done.
    gone: bool,
}

struct Node {
    ctx: Arc<Context>,
    alive: bool,
    life: u32,
    conns: BTreeMap<ConnId, Conn>,
    /// Wall-clock skew (clock jumps), ms.
    skew: i64,
    /// Presence entries this node announced (refreshed while it lives).
    owned: BTreeMap<(String, String), cerebrum_protocol::Participant>,
    deliver_due: u64,
    /// Connections per user counted on the broker (the Redis broker's own tally).
    users: BTreeMap<String, usize>,
}

struct World {
    seed: u64,
    config: SimConfig,
    rng: fastrand::Rng,
    now: u64,
    origin: Instant,
    seq: u64,
    queue: BTreeMap<(u64, u64), Ev>,
    broker: SimBroker,
    store: SimStore,
    nodes: Vec<Node>,
    clients: Vec<Client>,
    links: BTreeMap<LinkId, Link>,
    next_link: LinkId,
    /// Notifications whose `ack` the server acknowledged: (user, notification id).
    confirmed_acks: HashSet<(String, String)>,
    broker_was_up: bool,
    report: Report,
    failure: Option<Failure>,
}

fn server_config() -> ServerConfig {
    let mut config = ServerConfig::default();
    config.jwt = Some(JwtKey::hs256(SECRET));
    config.heartbeat_interval = Duration::from_secs(5);
    config.presence_grace = Duration::from_secs(2);
    config.outbound_queue = 256;
    config.rate_limit_per_sec = 0.0;
    config.max_connections_per_user = 3;
    config.dedupe_window = Duration::from_secs(600);
    // Small pages, read again soon: paging, acks from the user's other connections (on this
    // node and on others) and the reads that learn of the latter all happen in a run.
    config.pending_page_size = 3;
    config.pending_recheck = Duration::from_millis(1_000);
    config
}

impl World {
    fn new(seed: u64, config: SimConfig) -> Self {
        let mut rng = fastrand::Rng::with_seed(seed);
        let origin = Instant::now();
        let mut world = Self {
            seed,
            broker: SimBroker::new(
                rng.u64(..),
                PRESENCE_TTL_MS,
                config.plant != Some(Plant::NonIdempotentAppend),
            ),
            store: SimStore::default(),
            nodes: Vec::new(),
            clients: Vec::new(),
            links: BTreeMap::new(),
            next_link: 1,
            confirmed_acks: HashSet::new(),
            broker_was_up: true,
            report: Report::default(),
            failure: None,
            now: 0,
            origin,
            seq: 0,
            queue: BTreeMap::new(),
            rng: fastrand::Rng::with_seed(rng.u64(..)),
            config,
        };
        for _ in 0..world.config.nodes.clamp(1, 5) {
            let node = world.new_node(0);
            world.nodes.push(node);
        }
        for i in 0..world.config.clients.max(1) {
            let user = format!("u{}", i % world.config.users.max(1));
            let client = world.new_client(user, Acks::Most);
            world.clients.push(client);
        }
        world
    }

    fn new_node(&mut self, life: u32) -> Node {
        let now = Now {
            mono: self.origin,
            unix_ms: UNIX_BASE,
        };
        let memory = MemoryBroker::new(16, Duration::from_secs(300), self.rng.u64(..));
        let ctx = Context::new(server_config(), memory, true, self.rng.u64(..), now)
            .unwrap_or_else(|err| unreachable!("the simulated configuration is valid: {err}"));
        Node {
            ctx,
            alive: true,
            life,
            conns: BTreeMap::new(),
            skew: 0,
            owned: BTreeMap::new(),
            deliver_due: 0,
            users: BTreeMap::new(),
        }
    }

    fn new_client(&mut self, user: String, acks: Acks) -> Client {
        let mut config = Config::new("ws://sim.invalid/ws");
        config.reconnect_attempts = ReconnectAttempts::Unlimited;
        config.reconnect_interval = Duration::from_millis(200);
        config.max_reconnect_delay = Duration::from_secs(2);
        config.heartbeat_interval = Duration::from_secs(2);
        config.ack_timeout = Duration::from_secs(3_600);
        config.token_transport = TokenTransport::AuthMessage;
        config.seed = self.rng.u64(..);
        let channels = Some(vec!["chat:*".to_owned()]);
        let token = mint_hs256_until(SECRET, &user, None, UNIX_BASE / 1000 + 86_400, channels)
            .unwrap_or_default();
        config.token = Some(AuthToken::new(token));
        let mut core = ClientCore::new(config, self.instant(), UNIX_BASE).unwrap_or_else(|err| {
            unreachable!("the simulated client configuration is valid: {err}")
        });
        core.connect(self.instant());
        for chat in CHATS {
            let _ = core.subscribe(chat, self.instant());
        }
        Client {
            core,
            user,
            link: None,
            sent: HashSet::new(),
            notification_acks: HashMap::new(),
            notifications: HashSet::new(),
            studying: BTreeSet::new(),
            acks,
        }
    }

    fn instant(&self) -> Instant {
        self.origin + Duration::from_millis(self.now)
    }

    fn node_now(&self, node: NodeId) -> Now {
        let skew = self.nodes.get(node).map_or(0, |n| n.skew);
        Now {
            mono: self.instant(),
            unix_ms: UNIX_BASE.saturating_add_signed(skew) + self.now,
        }
    }

    fn fail(&mut self, invariant: &'static str, detail: String) {
        if self.failure.is_none() {
            self.failure = Some(Failure {
                seed: self.seed,
                invariant,
                at_ms: self.now,
                detail,
            });
        }
    }

    fn schedule(&mut self, due: u64, ev: Ev) {
        self.seq += 1;
        self.queue.insert((due, self.seq), ev);
    }

    fn delay(&mut self) -> u64 {
        // Mostly fast, sometimes slow.
        if self.rng.u8(..) < 20 {
            self.rng.u64(20..=400)
        } else {
            self.rng.u64(0..=8)
        }
    }

    // ----- the run -----

    fn run(&mut self) -> Result<(), Failure> {
        for step in 0..self.config.steps {
            let dt = self.rng.u64(1..=50);
            self.advance(dt);
            self.act(step);
            if let Some(failure) = self.failure.take() {
                return Err(failure);
            }
        }
        self.heal();
        // Settle: everyone reconnects, grace periods and TTLs pass.
        for _ in 0..400 {
            self.advance(50);
            if let Some(failure) = self.failure.take() {
                return Err(failure);
            }
        }
        self.check_presence();
        self.check_pending_notifications();
        match self.failure.take() {
            Some(failure) => Err(failure),
            None => Ok(()),
        }
    }

    /// Moves time forward by `dt` ms, handling everything due on the way, in order.
    fn advance(&mut self, dt: u64) {
        let end = self.now + dt;
        loop {
            let next = self.queue.keys().next().map(|(due, _)| *due);
            match next {
                Some(due) if due <= end => {
                    self.now = self.now.max(due);
                    let Some((_, ev)) = self.queue.pop_first() else {
                        break;
                    };
                    self.handle(ev);
                }
                _ => break,
            }
        }
        self.now = end;
        self.timeouts();
        self.background();
    }

    fn timeouts(&mut self) {
        let now = self.instant();
        for i in 0..self.clients.len() {
            if self.clients[i]
                .core
                .poll_timeout()
                .is_some_and(|t| t <= now)
            {
                self.clients[i].core.handle_timeout(now);
                self.drain_client(i);
            }
        }
        for node in 0..self.nodes.len() {
            if !self.nodes[node].alive {
                continue;
            }
            let due: Vec<ConnId> = self.nodes[node]
                .conns
                .iter()
                .filter(|(_, c)| !c.closed && c.session.poll_timeout() <= now)
                .map(|(id, _)| *id)
                .collect();
            for conn in due {
                let at = self.node_now(node);
                if let Some(c) = self.nodes[node].conns.get_mut(&conn) {
                    c.session.handle_timeout(at);
                }
                self.pump(node, conn);
            }
        }
    }

    /// The server's background tasks (every step: their own periods are multiples of it).
    fn background(&mut self) {
        let up = self.broker.is_up(self.now);
        if up && !self.broker_was_up {
            for node in 0..self.nodes.len() {
                self.resync(node);
            }
        }
        self.broker_was_up = up;
        for node in 0..self.nodes.len() {
            if !self.nodes[node].alive {
                continue;
            }
            if self.now % REFRESH_MS < 50 {
                let owned: Vec<(String, cerebrum_protocol::Participant)> = self.nodes[node]
                    .owned
                    .iter()
                    .map(|((channel, _), p)| (channel.clone(), p.clone()))
                    .collect();
                let counts: Vec<(String, usize)> = self.nodes[node]
                    .users
                    .iter()
                    .map(|(user, count)| (user.clone(), *count))
                    .collect();
                self.broker.refresh(node, &owned, &counts, self.now);
            }
            // `App::expire_presence` (every 250 ms) and `App::presence_tasks` (every 2 s; here
            // every 500 ms of the scaled-down TTL).
            let at = self.node_now(node);
            let effects = self.nodes[node].ctx.expire_study(at);
            self.node_effects(node, effects);
            if self.now % 500 < 50 {
                let effects = self.nodes[node].ctx.presence_tasks();
                self.node_effects(node, effects);
            }
        }
    }

    /// One step's random actions: clients act, faults strike.
    fn act(&mut self, step: u32) {
        for i in 0..self.clients.len() {
            if self.rng.u8(..) < 30 {
                self.client_action(i, step);
            }
        }
        if self.rng.u8(..) < 4 {
            self.notify();
        }
        if self.config.faults && self.rng.u8(..) < 6 {
            self.fault();
        }
    }

    fn client_action(&mut self, i: usize, step: u32) {
        let now = self.instant();
        let user = self.clients[i].user.clone();
        match self.rng.u8(0..10) {
            0..=5 => {
                let chat = CHATS[self.rng.usize(0..CHATS.len())];
                let Ok(message) = Outgoing::value("chat.msg", &format!("{user} says {step}"))
                else {
                    return;
                };
                let message = message.to_channel(chat).with_ack(true);
                if let Ok(id) = self.clients[i].core.send(message, now) {
                    self.clients[i].sent.insert(id.as_str().to_owned());
                }
            }
            6 | 7 => {
                let topic = TOPICS[self.rng.usize(0..TOPICS.len())];
                let start = StudySessionStart {
                    user_id: user,
                    topic: topic.to_owned(),
                    timestamp: None,
                };
                if let Ok(message) = Outgoing::payload(&start)
                    && self.clients[i]
                        .core
                        .send(message.with_ack(true), now)
                        .is_ok()
                {
                    self.clients[i].studying.insert(topic);
                }
            }
            8 => {
                let Some(topic) = self.clients[i].studying.pop_first() else {
                    return;
                };
                let end = StudySessionEnd {
                    user_id: user,
                    topic: topic.to_owned(),
                };
                if let Ok(message) = Outgoing::payload(&end) {
                    let _ = self.clients[i].core.send(message.with_ack(true), now);
                }
            }
            _ => {}
        }
        self.drain_client(i);
    }

    fn fault(&mut self) {
        self.report.faults += 1;
        match self.rng.u8(0..10) {
            0..=3 => {
                // Cut a link.
                let open: Vec<LinkId> = self
                    .links
                    .iter()
                    .filter(|(_, l)| l.open)
                    .map(|(id, _)| *id)
                    .collect();
                if !open.is_empty() {
                    let link = open[self.rng.usize(0..open.len())];
                    self.cut(link, Some(1006), true);
                }
            }
            4 => {
                // Crash a node (one stays up), or restart a dead one.
                let dead: Vec<NodeId> = (0..self.nodes.len())
                    .filter(|n| !self.nodes[*n].alive)
                    .collect();
                if let Some(node) = dead.first() {
                    self.restart(*node);
                } else if self.nodes.len() > 1 {
                    let node = self.rng.usize(0..self.nodes.len());
                    self.crash(node);
                }
            }
            5 | 6 => {
                let until = self.now + self.rng.u64(100..=3_000);
                self.broker.down_until = self.broker.down_until.max(until);
            }
            7 => {
                self.store.failing_until = self.now + self.rng.u64(100..=2_000);
            }
            8 => {
                // A clock jump on one node's wall clock.
                let node = self.rng.usize(0..self.nodes.len());
                self.nodes[node].skew += self.rng.i64(-60_000..=60_000);
            }
            _ => {
                let node = self.rng.usize(0..self.nodes.len());
                self.restart_if_dead(node);
            }
        }
    }

    fn heal(&mut self) {
        self.broker.down_until = self.broker.down_until.min(self.now);
        self.store.failing_until = self.store.failing_until.min(self.now);
        for node in 0..self.nodes.len() {
            self.restart_if_dead(node);
            self.nodes[node].skew = 0;
        }
    }

    fn crash(&mut self, node: NodeId) {
        let n = &mut self.nodes[node];
        n.alive = false;
        n.conns.clear();
        n.owned.clear();
        self.broker.node_died(node);
        let links: Vec<LinkId> = self
            .links
            .iter()
            .filter(|(_, l)| l.node == node && l.open)
            .map(|(id, _)| *id)
            .collect();
        for link in links {
            if let Some(l) = self.links.get_mut(&link) {
                l.open = false;
                // A dead node's frames on their way are lost with it.
                let due = self.now + 1;
                self.schedule(
                    due,
                    Ev::ClientClosed {
                        link,
                        code: Some(1006),
                    },
                );
            }
        }
    }

    fn restart(&mut self, node: NodeId) {
        let life = self.nodes[node].life + 1;
        let mut fresh = self.new_node(life);
        fresh.deliver_due = self.now;
        self.nodes[node] = fresh;
    }

    fn restart_if_dead(&mut self, node: NodeId) {
        if !self.nodes[node].alive {
            self.restart(node);
        }
    }

    /// Cuts `link`: the client sees it close with `code`, the server loses the connection.
    /// `lossy`: the frames on their way to the client are lost (a reset), rather than
    /// delivered before the close (the server's own close).
    fn cut(&mut self, link: LinkId, code: Option<u16>, lossy: bool) {
        let Some(l) = self.links.get_mut(&link) else {
            return;
        };
        if !l.open {
            return;
        }
        l.open = false;
        let due = if lossy {
            self.now + 1
        } else {
            l.to_client_due.max(self.now) + 1
        };
        l.to_client_due = due;
        self.schedule(due, Ev::ClientClosed { link, code });
        self.server_gone(link);
    }

    // ----- events -----

    fn handle(&mut self, ev: Ev) {
        match ev {
            Ev::Open { link } => self.open(link),
            Ev::ToServer { link, text } => {
                let Some(l) = self.links.get_mut(&link) else {
                    return;
                };
                if let Some(frame) = decode(&text).ok().filter(|e| e.kind() == "subscribe")
                    && let Ok(sub) = frame.typed::<cerebrum_protocol::Subscribe>()
                {
                    l.since
                        .insert(sub.channel.clone(), sub.since.map(|s| s.offset));
                }
                let (node, life, conn) = (l.node, l.life, l.conn);
                let Some(conn) = conn else { return };
                if !self.nodes[node].alive || self.nodes[node].life != life {
                    return;
                }
                if let Some(c) = self.nodes[node].conns.get_mut(&conn) {
                    c.inbox.push_back(text);
                }
                self.pump(node, conn);
            }
            Ev::ToClient { link, text } => self.deliver_to_client(link, text),
            Ev::ClientClosed { link, code } => {
                let Some(l) = self.links.get(&link) else {
                    return;
                };
                let client = l.client;
                if self.clients[client].link == Some(link) {
                    self.clients[client].link = None;
                    let now = self.instant();
                    self.clients[client].core.handle_transport(
                        TransportEvent::Closed {
                            code,
                            reason: String::new(),
                        },
                        now,
                    );
                    self.drain_client(client);
                }
            }
            Ev::ServerClosed { link } => self.server_gone(link),
            Ev::Deliver {
                node,
                life,
                delivery,
            } => {
                if !self.nodes[node].alive || self.nodes[node].life != life {
                    return;
                }
                if !self.broker.is_up(self.now) {
                    // The pub/sub link is down: the resync after the outage catches up.
                    return;
                }
                let at = self.instant();
                if self.nodes[node].ctx.hub.deliver(&delivery, at) {
                    // `App::resync_gap`.
                    self.resync_channel(node, &delivery.channel);
                }
                self.flush_all(node);
            }
            Ev::Effect {
                node,
                life,
                conn,
                effect,
            } => {
                if !self.nodes[node].alive || self.nodes[node].life != life {
                    return;
                }
                if self.carry_out(node, conn, effect) {
                    return;
                }
                let gone = match self.nodes[node].conns.get_mut(&conn) {
                    Some(c) => {
                        c.busy = false;
                        c.gone
                    }
                    None => false,
                };
                if gone {
                    self.end_conn(node, conn);
                } else {
                    self.pump(node, conn);
                }
                self.pump_woken(node);
            }
        }
    }

    /// Runs the connections whose driver another connection's effect woke through their
    /// outbox (a page of pending notifications acknowledged on another connection of the
    /// user), as `net/conn.rs` does when woken: each carries out what its session has for it.
    fn pump_woken(&mut self, node: NodeId) {
        let woken: Vec<ConnId> = self.nodes[node]
            .conns
            .iter()
            .filter(|(_, c)| !c.closed && !c.busy && c.session.has_effects())
            .map(|(id, _)| *id)
            .collect();
        for conn in woken {
            self.pump(node, conn);
        }
    }

    fn open(&mut self, link: LinkId) {
        let Some(l) = self.links.get(&link) else {
            return;
        };
        let (client, node) = (l.client, l.node);
        if !self.nodes[node].alive || self.clients[client].link != Some(link) {
            self.cut(link, Some(1006), true);
            return;
        }
        let at = self.node_now(node);
        let outbox = Outbox::new(self.nodes[node].ctx.config.outbound_queue);
        let session = Session::new(self.nodes[node].ctx.clone(), outbox.clone(), None, at);
        let conn = session.conn();
        self.nodes[node].conns.insert(
            conn,
            Conn {
                session,
                outbox,
                link,
                inbox: VecDeque::new(),
                effects: VecDeque::new(),
                busy: false,
                closed: false,
                gone: false,
            },
        );
        let life = self.nodes[node].life;
        if let Some(l) = self.links.get_mut(&link) {
            l.conn = Some(conn);
            l.life = life;
        }
        let now = self.instant();
        self.clients[client]
            .core
            .handle_transport(TransportEvent::Opened, now);
        self.drain_client(client);
        self.pump(node, conn);
    }

    /// The server side of `link` is gone (cut, or the client closed it).
    fn server_gone(&mut self, link: LinkId) {
        let Some(l) = self.links.get(&link) else {
            return;
        };
        let (node, life, conn) = (l.node, l.life, l.conn);
        let Some(conn) = conn else { return };
        if !self.nodes[node].alive || self.nodes[node].life != life {
            return;
        }
        self.end_conn(node, conn);
    }

    /// Ends a connection whose link is gone, once the effect it carries out is done.
    fn end_conn(&mut self, node: NodeId, conn: ConnId) {
        let Some(c) = self.nodes[node].conns.get_mut(&conn) else {
            return;
        };
        c.gone = true;
        if c.busy {
            return;
        }
        let at = self.node_now(node);
        let Some(mut c) = self.nodes[node].conns.remove(&conn) else {
            return;
        };
        // As `net/conn.rs`: the effects being carried out finish first (the task awaits
        // them), answers included; then the session disconnects.
        self.run_out(node, &mut c, at);
        if !c.closed {
            c.session.disconnect(at);
        }
        // Then it gives back what the session held (in a task of its own).
        self.run_out(node, &mut c, at);
    }

    /// Carries out the effects of a connection whose link is gone, answers included, until
    /// none is left; a pipelined publication may or may not reach the broker.
    fn run_out(&mut self, node: NodeId, c: &mut Conn, at: Now) {
        loop {
            c.effects
                .extend(std::iter::from_fn(|| c.session.poll_effect()));
            let Some(effect) = c.effects.pop_front() else {
                break;
            };
            match effect {
                Effect::Close { .. } => {}
                Effect::Publish { .. } if self.rng.bool() => {}
                effect => {
                    if self.execute(node, c, effect).is_some() {
                        // The task would keep asking; the connection is gone anyway.
                        c.session.handle_claimed(Ok(Claimed::InProgress), at);
                    }
                }
            }
        }
    }

    fn deliver_to_client(&mut self, link: LinkId, text: String) {
        let Some(l) = self.links.get_mut(&link) else {
            return;
        };
        let client = l.client;
        if self.clients[client].link != Some(link) {
            return;
        }
        self.report.frames += 1;
        // Check 2: in order, no gap, per explicitly subscribed channel of this connection.
        if let Ok(envelope) = decode(&text) {
            if envelope.kind() == "subscribed"
                && let Ok(sub) = envelope.typed::<cerebrum_protocol::Subscribed>()
            {
                let since = l.since.get(&sub.channel).copied().flatten();
                let next = match since {
                    Some(since) if sub.recovered => since + 1,
                    _ => sub.offset + 1,
                };
                l.next.insert(sub.channel.clone(), next);
            } else if let (Some(channel), Some(offset)) = (envelope.channel(), envelope.offset())
                && let Some(next) = l.next.get_mut(channel)
            {
                let expected = *next;
                *next = offset + 1;
                if offset != expected {
                    let detail = format!(
                        "client {client} link {link}: `{channel}` offset {offset} where {expected} was next"
                    );
                    self.fail("publications in order, once each, no gap", detail);
                }
            }
        }
        let now = self.instant();
        self.clients[client]
            .core
            .handle_transport(TransportEvent::Frame(text), now);
        self.drain_client(client);
    }

    // ----- the client driver -----

    fn drain_client(&mut self, i: usize) {
        loop {
            let mut progressed = false;
            while let Some(command) = self.clients[i].core.poll_command() {
                progressed = true;
                self.command(i, command);
            }
            while let Some(event) = self.clients[i].core.poll_event() {
                progressed = true;
                self.event(i, event);
            }
            if !progressed {
                break;
            }
        }
    }

    fn command(&mut self, i: usize, command: Command) {
        match command {
            Command::Open { .. } => {
                let alive: Vec<NodeId> = (0..self.nodes.len())
                    .filter(|n| self.nodes[*n].alive)
                    .collect();
                let node = if alive.is_empty() {
                    0
                } else {
                    alive[self.rng.usize(0..alive.len())]
                };
                let link = self.next_link;
                self.next_link += 1;
                let due = self.now + self.delay();
                self.links.insert(
                    link,
                    Link {
                        client: i,
                        node,
                        life: self.nodes[node].life,
                        conn: None,
                        to_server_due: due,
                        to_client_due: due,
                        open: true,
                        since: HashMap::new(),
                        next: HashMap::new(),
                    },
                );
                self.clients[i].link = Some(link);
                self.schedule(due, Ev::Open { link });
            }
            Command::Transmit(text) => {
                let Some(link) = self.clients[i].link else {
                    return;
                };
                let delay = self.delay();
                let Some(l) = self.links.get_mut(&link).filter(|l| l.open) else {
                    return;
                };
                let due = l.to_server_due.max(self.now + delay);
                l.to_server_due = due;
                self.schedule(due, Ev::ToServer { link, text });
            }
            Command::Close { code, .. } => {
                let Some(link) = self.clients[i].link else {
                    return;
                };
                let Some(l) = self.links.get_mut(&link).filter(|l| l.open) else {
                    return;
                };
                l.open = false;
                let due = l.to_server_due.max(self.now) + 1;
                l.to_server_due = due;
                self.schedule(due, Ev::ServerClosed { link });
                let back = due + 1;
                self.schedule(
                    back,
                    Ev::ClientClosed {
                        link,
                        code: Some(code),
                    },
                );
            }
            other => {
                self.fail(
                    "the simulation carries out every command",
                    format!("unknown command {other:?}"),
                );
            }
        }
    }

    fn event(&mut self, i: usize, event: Event) {
        match event {
            Event::Acked { message_id } => {
                let id = message_id.as_str().to_owned();
                if self.clients[i].sent.contains(&id) {
                    self.report.acked += 1;
                    // Check 1: acknowledged only after it took effect, and once.
                    let taken = self.broker.appended.get(&id).copied().unwrap_or(0);
                    if taken != 1 {
                        self.fail(
                            "acked only after it took effect, exactly once",
                            format!("client {i}: `{id}` acked with {taken} appends"),
                        );
                    }
                }
                if let Some(notification) = self.clients[i].notification_acks.remove(&id) {
                    let user = self.clients[i].user.clone();
                    self.confirmed_acks.insert((user, notification));
                }
            }
            Event::Message(envelope) if envelope.kind() == "notification" => {
                let Some(id) = envelope.message_id().map(|id| id.as_str().to_owned()) else {
                    return;
                };
                self.clients[i].notifications.insert(id.clone());
                if self.clients[i].acks == Acks::All || self.rng.u8(..) < 180 {
                    let Ok(mid) = MessageId::new(id.clone()) else {
                        return;
                    };
                    if let Ok(ack) = Outgoing::payload(&Ack { message_id: mid }) {
                        let now = self.instant();
                        if let Ok(frame_id) = self.clients[i].core.send(ack.with_ack(true), now) {
                            self.clients[i]
                                .notification_acks
                                .insert(frame_id.as_str().to_owned(), id);
                        }
                    }
                }
            }
            _ => {}
        }
    }

    // ----- the server driver -----

    /// Runs a connection as `net/conn.rs` does: its effects in order, one at a time; then, when
    /// none is out and the session waits for nothing, its next frame; then its outbox.
    fn pump(&mut self, node: NodeId, conn: ConnId) {
        loop {
            let life = self.nodes[node].life;
            let Some(c) = self.nodes[node].conns.get_mut(&conn) else {
                return;
            };
            c.effects
                .extend(std::iter::from_fn(|| c.session.poll_effect()));
            if c.busy {
                break;
            }
            if let Some(effect) = c.effects.pop_front() {
                if let Effect::Close { code, .. } = effect {
                    c.closed = true;
                    let link = c.link;
                    self.flush(node, conn);
                    self.cut(link, Some(code), false);
                    return;
                }
                c.busy = true;
                let due = self.now + self.delay();
                self.schedule(
                    due,
                    Ev::Effect {
                        node,
                        life,
                        conn,
                        effect,
                    },
                );
                break;
            }
            if c.session.is_waiting() || c.closed {
                break;
            }
            let Some(text) = c.inbox.pop_front() else {
                break;
            };
            let at = self.node_now(node);
            if let Some(c) = self.nodes[node].conns.get_mut(&conn) {
                c.session.handle_text(&text, at);
            }
        }
        self.flush(node, conn);
    }

    fn flush_all(&mut self, node: NodeId) {
        let conns: Vec<ConnId> = self.nodes[node].conns.keys().copied().collect();
        for conn in conns {
            self.flush(node, conn);
        }
    }

    /// Writes a connection's outbox to its link (a slow consumer is closed with 4008).
    fn flush(&mut self, node: NodeId, conn: ConnId) {
        let Some(c) = self.nodes[node].conns.get(&conn) else {
            return;
        };
        let link = c.link;
        if c.outbox.is_slow() {
            self.cut(link, Some(4008), false);
            return;
        }
        let frames = c.outbox.take_all();
        for frame in frames {
            let delay = self.delay();
            let Some(l) = self.links.get_mut(&link).filter(|l| l.open) else {
                return;
            };
            let due = l.to_client_due.max(self.now + delay);
            l.to_client_due = due;
            self.schedule(
                due,
                Ev::ToClient {
                    link,
                    text: frame.text.as_str().to_owned(),
                },
            );
        }
    }

    /// `true` when the effect is to be carried out again later (the connection stays busy).
    fn carry_out(&mut self, node: NodeId, conn: ConnId, effect: Effect) -> bool {
        let Some(mut c) = self.nodes[node].conns.remove(&conn) else {
            return false;
        };
        let again = self.execute(node, &mut c, effect);
        self.nodes[node].conns.insert(conn, c);
        let Some(effect) = again else {
            return false;
        };
        let life = self.nodes[node].life;
        self.schedule(
            self.now + 50,
            Ev::Effect {
                node,
                life,
                conn,
                effect,
            },
        );
        true
    }

    /// Carries one effect out against the simulated broker and store, and feeds the answer
    /// back.
    /// `Some`: the effect must be carried out again later (a claim still in progress).
    fn execute(&mut self, node: NodeId, c: &mut Conn, effect: Effect) -> Option<Effect> {
        let at = self.node_now(node);
        let now = self.now;
        match effect {
            Effect::Close { .. } => {}
            Effect::Publish {
                channel,
                envelope,
                ack,
            } => {
                if self.config.plant == Some(Plant::AckBeforeEffect)
                    && let Some(id) = ack.clone()
                {
                    // Acknowledged, and the broker never takes it.
                    c.session.send_ack(id, at);
                    return None;
                }
                match self.append(&channel, *envelope) {
                    Ok(()) => {
                        if let Some(id) = ack {
                            c.session.send_ack(id, at);
                        }
                    }
                    Err(_) => c.session.send_internal_error(ack, at),
                }
            }
            Effect::FinishStudy {
                user_id,
                finished,
                ack,
            } => {
                let record = match &finished {
                    Some(done) => self.store.record_session(&user_id, done.duration_secs, now),
                    None => self.store.study_record(&user_id, now),
                };
                match record {
                    Ok(record) => {
                        let metrics = self.nodes[node].ctx.study_metrics(&user_id, &record, None);
                        self.publish_metrics(node, &metrics);
                        if let Some(id) = ack {
                            c.session.send_ack(id, at);
                        }
                    }
                    Err(_) => match &finished {
                        Some(done) => c.session.study_end_failed(done, ack, at),
                        None => c.session.send_internal_error(ack, at),
                    },
                }
            }
            Effect::StudyStarted { user_id, topic } => {
                if let Ok(record) = self.store.study_record(&user_id, now) {
                    let metrics =
                        self.nodes[node]
                            .ctx
                            .study_metrics(&user_id, &record, Some(topic));
                    self.publish_metrics(node, &metrics);
                }
            }
            Effect::DeliverPending { user_id } => {
                let page = self.nodes[node].ctx.config.pending_page();
                if let Ok(page) = self.store.pending(&user_id, page, now) {
                    // Check 4a: a notification whose `ack` the server acknowledged is never
                    // delivered again (live copies already on their way to the user's other
                    // connections are not deliveries "again").
                    for notification in &page {
                        if self
                            .confirmed_acks
                            .contains(&(user_id.clone(), notification.id.clone()))
                        {
                            self.fail(
                                "an acknowledged notification is never delivered again",
                                format!(
                                    "`{}` paged to {user_id} again after its ack was acknowledged",
                                    notification.id
                                ),
                            );
                        }
                    }
                    c.session.handle_pending_page(&page, at);
                }
            }
            Effect::AckNotification {
                user_id,
                notification_id,
                ack,
            } => {
                let recorded = if self.config.plant == Some(Plant::ForgetNotificationAck) {
                    Ok(())
                } else {
                    self.store.ack(&user_id, notification_id.as_str(), now)
                };
                match recorded {
                    Ok(()) => {
                        c.session.handle_notification_acked(&notification_id);
                        if let Some(id) = ack {
                            c.session.send_ack(id, at);
                        }
                    }
                    Err(_) => c.session.send_internal_error(ack, at),
                }
            }
            Effect::Claim { key, id } => {
                let claimed = self.broker.claim(&key, id.as_str(), CLAIM_PENDING_MS, now);
                if matches!(claimed, Ok(Claimed::InProgress)) {
                    // `net/conn.rs` asks again until the claim settles or expires.
                    return Some(Effect::Claim { key, id });
                }
                c.session.handle_claimed(claimed, at);
            }
            Effect::Settle { key, id } => {
                let _ = self.broker.settle(&key, id.as_str(), 600_000, now);
            }
            Effect::Release { key, id } => {
                let _ = self.broker.release(&key, id.as_str(), now);
            }
            Effect::CountUser { user, limit } => {
                let admitted = self.broker.user_connected(node, &user, limit, now);
                if matches!(admitted, Ok(true)) {
                    *self.nodes[node].users.entry(user).or_insert(0) += 1;
                }
                c.session.handle_user_counted(admitted, at);
            }
            Effect::UncountUser { user } => {
                // As the Redis broker: its own tally first (a counted connection only).
                let users = &mut self.nodes[node].users;
                let count = users.get_mut(&user)?;
                *count -= 1;
                if *count == 0 {
                    users.remove(&user);
                }
                let _ = self.broker.user_disconnected(node, &user, now);
            }
            Effect::Watch { channel } => {
                if self.broker.watch(node, &channel, now).is_err() {
                    c.session.handle_watch_failed(&channel);
                }
            }
            Effect::Unwatch { channel } => self.broker.unwatch(node, &channel),
            Effect::Replay {
                channel,
                since,
                watch,
            } => {
                if watch && let Err(err) = self.broker.watch(node, &channel, now) {
                    c.session.handle_replay(Err(err), false, at);
                    return None;
                }
                let mut since = since;
                if self.config.plant == Some(Plant::ReplayOffByOne)
                    && let Some(since) = since.as_mut()
                {
                    since.offset += 1;
                }
                let replay = self.broker.replay(&channel, since.as_ref(), at.mono, now);
                c.session.handle_replay(replay, true, at);
            }
            Effect::PresenceJoin {
                channel,
                participant,
            } => {
                let user = participant.user_id.clone();
                // As the Redis broker: refreshed from now on, whether or not the call gets
                // through (a failed join is re-added by the next refresh).
                let joined = self
                    .broker
                    .presence_join(node, &channel, participant.clone(), now);
                self.nodes[node].owned.insert((channel, user), participant);
                c.session.handle_presence_joined(joined, at);
            }
            Effect::PresenceLeave {
                channel,
                user_id,
                joined_at,
            } => {
                self.presence_leave(node, &channel, &user_id, joined_at);
            }
            Effect::SessionUpdate { channel, topic } => self.session_update(node, &channel, &topic),
            other => {
                self.fail(
                    "the simulation carries out every effect",
                    format!("unknown effect {other:?}"),
                );
            }
        }
        None
    }

    /// Appends to the broker and fans the publication out to the watching nodes.
    fn append(&mut self, channel: &str, envelope: Envelope) -> Result<(), BrokerError> {
        let at = self.instant();
        let id = envelope.message_id().map(|id| id.as_str().to_owned());
        let Some((publication, epoch, nodes)) =
            self.broker.append(channel, envelope, at, self.now)?
        else {
            // Taken already (a retry): nothing new to fan out.
            return Ok(());
        };
        if channel.starts_with("chat:") {
            self.report.publications += 1;
        }
        for node in nodes {
            if !self.nodes[node].alive {
                continue;
            }
            let delay = self.delay();
            let due = self.nodes[node].deliver_due.max(self.now + delay);
            self.nodes[node].deliver_due = due;
            let life = self.nodes[node].life;
            self.schedule(
                due,
                Ev::Deliver {
                    node,
                    life,
                    delivery: Delivery {
                        channel: channel.to_owned(),
                        epoch: epoch.clone(),
                        offset: publication.offset,
                        text: publication.text.clone(),
                    },
                },
            );
        }
        if let Some(taken) = id.and_then(|id| self.broker.appended.get(&id).copied())
            && taken > 1
        {
            self.fail(
                "a message takes effect exactly once",
                format!("a publication on `{channel}` was appended {taken} times"),
            );
        }
        Ok(())
    }

    fn publish_metrics(&mut self, node: NodeId, metrics: &cerebrum_protocol::StudyMetrics) {
        let at = self.node_now(node);
        if let Some((channel, envelope)) = self.nodes[node].ctx.metrics_publication(metrics, at) {
            let _ = self.append(&channel, envelope);
        }
    }

    fn presence_leave(&mut self, node: NodeId, channel: &str, user: &str, joined_at: u64) {
        if self.config.plant == Some(Plant::KeepPresence) {
            return;
        }
        // As the Redis broker: no longer refreshed, whether or not the call gets through (a
        // member the call missed expires after the TTL) — when it is the entry that left.
        let key = (channel.to_owned(), user.to_owned());
        if self.nodes[node]
            .owned
            .get(&key)
            .is_some_and(|p| p.joined_at == joined_at)
        {
            self.nodes[node].owned.remove(&key);
        }
        let _ = self
            .broker
            .presence_leave(channel, user, joined_at, self.now);
    }

    fn session_update(&mut self, node: NodeId, channel: &str, topic: &str) {
        let at = self.node_now(node);
        let Ok(members) = self.broker.members(channel, self.now) else {
            return;
        };
        if let Some(envelope) = self.nodes[node]
            .ctx
            .session_update(channel, topic, members, at)
        {
            let _ = self.append(channel, envelope);
        }
    }

    /// `App::run_node_effects`: the core's periodic effects of `node`, carried out in order.
    fn node_effects(&mut self, node: NodeId, effects: Vec<NodeEffect>) {
        for effect in effects {
            match effect {
                NodeEffect::PresenceLeave {
                    channel,
                    user_id,
                    joined_at,
                } => self.presence_leave(node, &channel, &user_id, joined_at),
                NodeEffect::RecordStudy { finished } => {
                    match self.store.record_session(
                        &finished.user_id,
                        finished.duration_secs,
                        self.now,
                    ) {
                        Ok(record) => {
                            let metrics = self.nodes[node].ctx.study_metrics(
                                &finished.user_id,
                                &record,
                                None,
                            );
                            self.publish_metrics(node, &metrics);
                        }
                        Err(_) => self.nodes[node].ctx.study_unrecorded(finished),
                    }
                }
                NodeEffect::SessionUpdate { channel, topic } => {
                    self.session_update(node, &channel, &topic);
                }
                NodeEffect::ExpirePresence { channel } => {
                    let Ok(gone) = self.broker.expire(&channel, self.now) else {
                        continue;
                    };
                    if let Some(NodeEffect::SessionUpdate { channel, topic }) =
                        self.nodes[node].ctx.presence_expired(&channel, &gone)
                    {
                        self.session_update(node, &channel, &topic);
                    }
                }
                NodeEffect::ReconcilePresence { members } => self.reconcile(node, members),
                other => self.fail(
                    "the simulation carries out every node effect",
                    format!("unknown node effect {other:?}"),
                ),
            }
        }
    }

    /// The Redis broker's `reconcile`: the node's members are its tracker's; the entries it
    /// announced that are not leave (conditionally).
    fn reconcile(&mut self, node: NodeId, members: Vec<(String, cerebrum_protocol::Participant)>) {
        if self.config.plant == Some(Plant::KeepPresence) {
            return;
        }
        let desired: BTreeMap<(String, String), cerebrum_protocol::Participant> = members
            .into_iter()
            .map(|(channel, p)| ((channel, p.user_id.clone()), p))
            .collect();
        let stale: Vec<(String, String, u64)> = self.nodes[node]
            .owned
            .iter()
            .filter(|(key, p)| desired.get(*key).is_none_or(|d| d.joined_at != p.joined_at))
            .map(|((channel, user), p)| (channel.clone(), user.clone(), p.joined_at))
            .collect();
        self.nodes[node].owned = desired;
        for (channel, user, joined_at) in stale {
            if self
                .broker
                .presence_leave(&channel, &user, joined_at, self.now)
                .is_err()
            {
                break;
            }
        }
    }

    /// `App::resync`: after the broker's outage, what each remote channel's subscribers missed.
    fn resync(&mut self, node: NodeId) {
        if !self.nodes[node].alive {
            return;
        }
        for (channel, _) in self.nodes[node].ctx.hub.resync_positions() {
            self.resync_channel(node, &channel);
        }
        self.flush_all(node);
    }

    /// Replays `channel` from its subscriber furthest behind into the node's hub.
    fn resync_channel(&mut self, node: NodeId, channel: &str) {
        let at = self.instant();
        let Some(since) = self.nodes[node].ctx.hub.resync_position(channel) else {
            return;
        };
        match self.broker.replay(channel, Some(&since), at, self.now) {
            Ok(replay) if replay.recovered => {
                for publication in replay.publications {
                    self.nodes[node].ctx.hub.deliver(
                        &Delivery {
                            channel: channel.to_owned(),
                            epoch: replay.epoch.clone(),
                            offset: publication.offset,
                            text: publication.text,
                        },
                        at,
                    );
                }
            }
            Ok(_) => self.nodes[node].ctx.hub.skip_gaps(channel, at),
            // The broker is down again: the resync after this outage catches up.
            Err(_) => {}
        }
    }

    /// The operator sends a notification to a user (`POST /api/notifications`).
    fn notify(&mut self) {
        let user = format!("u{}", self.rng.usize(0..self.config.users.max(1)));
        let id = format!("n-{}-{}", self.seed, self.seq);
        let notification = Notification {
            id: id.clone(),
            title: "Quiz ready".into(),
            message: "Chapter 3".into(),
            kind: NotificationKind::Info,
            priority: Priority::Medium,
            action_url: None,
            action_text: None,
        };
        if self
            .store
            .save(&user, notification.clone(), self.now)
            .is_err()
        {
            return;
        }
        let Ok(channel) = cerebrum_protocol::user_channel(&user) else {
            return;
        };
        let Ok(mid) = MessageId::new(id) else { return };
        if let Ok(envelope) = Envelope::from_payload(&notification) {
            let envelope = envelope
                .with_timestamp(UNIX_BASE + self.now)
                .with_message_id(mid);
            let _ = self.append(&channel, envelope);
        }
    }

    // ----- the final checks -----

    /// Check 3: each study session's presence is exactly the users the live nodes have in it.
    fn check_presence(&mut self) {
        let users: Vec<String> = (0..self.config.users.max(1))
            .map(|u| format!("u{u}"))
            .collect();
        for topic in TOPICS {
            let Ok(channel) = session_channel(topic) else {
                continue;
            };
            let Ok(members) = self.broker.members(&channel, self.now) else {
                continue;
            };
            let listed: BTreeSet<String> = members.into_iter().map(|p| p.user_id).collect();
            let live: BTreeSet<String> = users
                .iter()
                .filter(|user| {
                    self.nodes.iter().any(|n| {
                        n.alive
                            && n.ctx
                                .study
                                .lock()
                                .is_ok_and(|study| study.is_member(user, &channel))
                    })
                })
                .cloned()
                .collect();
            if listed != live {
                self.fail(
                    "presence converges to the live set",
                    format!("`{channel}`: the broker lists {listed:?}, the nodes have {live:?}"),
                );
            }
        }
    }

    /// Check 4b: every notification not acknowledged reaches the user's next connection (which
    /// acknowledges each one, so that it pages through all of them).
    fn check_pending_notifications(&mut self) {
        let users: Vec<String> = (0..self.config.users.max(1))
            .map(|u| format!("u{u}"))
            .collect();
        // Everyone leaves: the user's next connection is the fresh one.
        let now = self.instant();
        for i in 0..self.clients.len() {
            self.clients[i].core.disconnect(now);
            self.drain_client(i);
        }
        for _ in 0..40 {
            self.advance(50);
        }
        let first = self.clients.len();
        for user in &users {
            let client = self.new_client(user.clone(), Acks::All);
            self.clients.push(client);
        }
        for i in first..self.clients.len() {
            self.drain_client(i);
        }
        for _ in 0..200 {
            self.advance(50);
        }
        for (k, user) in users.iter().enumerate() {
            let got = &self.clients[first + k].notifications;
            let missing: Vec<String> = self
                .store
                .notifications
                .get(user)
                .map(|all| {
                    all.iter()
                        .filter(|(n, acked)| !acked && !got.contains(&n.id))
                        .map(|(n, _)| n.id.clone())
                        .collect()
                })
                .unwrap_or_default();
            if !missing.is_empty() {
                self.fail(
                    "an unacknowledged notification reaches the next connection",
                    format!("{user}'s new connection did not get {missing:?}"),
                );
            }
        }
    }
}
