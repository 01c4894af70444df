//! Real content for simulations: the chapters of a biology curriculum (NCERT classes XI-XII,
//! the syllabus the origin platform teaches), plausible students, and notification templates.

use cerebrum_protocol::{Notification, NotificationKind, Priority};

/// Chapters of the biology curriculum, as students name them when they start a session.
pub const TOPICS: &[&str] = &[
    "The Living World",
    "Biological Classification",
    "Plant Kingdom",
    "Animal Kingdom",
    "Morphology of Flowering Plants",
    "Anatomy of Flowering Plants",
    "Structural Organisation in Animals",
    "Cell: The Unit of Life",
    "Biomolecules",
    "Cell Cycle and Cell Division",
    "Photosynthesis in Higher Plants",
    "Respiration in Plants",
    "Plant Growth and Development",
    "Breathing and Exchange of Gases",
    "Body Fluids and Circulation",
    "Excretory Products and their Elimination",
    "Locomotion and Movement",
    "Neural Control and Coordination",
    "Chemical Coordination and Integration",
    "Sexual Reproduction in Flowering Plants",
    "Human Reproduction",
    "Reproductive Health",
    "Principles of Inheritance and Variation",
    "Molecular Basis of Inheritance",
    "Evolution",
    "Human Health and Disease",
    "Microbes in Human Welfare",
    "Biotechnology: Principles and Processes",
    "Biotechnology and its Applications",
    "Organisms and Populations",
    "Ecosystem",
    "Biodiversity and Conservation",
];

/// A simulated student: user id and display name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Student {
    /// The user id.
    pub id: &'static str,
    /// The display name.
    pub name: &'static str,
}

/// Students who show up in simulated study sessions.
pub const STUDENTS: &[Student] = &[
    Student {
        id: "student-aarav",
        name: "Aarav Sharma",
    },
    Student {
        id: "student-ananya",
        name: "Ananya Iyer",
    },
    Student {
        id: "student-kabir",
        name: "Kabir Mehta",
    },
    Student {
        id: "student-diya",
        name: "Diya Patel",
    },
    Student {
        id: "student-rohan",
        name: "Rohan Gupta",
    },
    Student {
        id: "student-meera",
        name: "Meera Nair",
    },
    Student {
        id: "student-arjun",
        name: "Arjun Reddy",
    },
    Student {
        id: "student-ishita",
        name: "Ishita Banerjee",
    },
    Student {
        id: "student-vivaan",
        name: "Vivaan Singh",
    },
    Student {
        id: "student-sara",
        name: "Sara Khan",
    },
    Student {
        id: "student-aditya",
        name: "Aditya Rao",
    },
    Student {
        id: "student-priya",
        name: "Priya Menon",
    },
    Student {
        id: "student-nikhil",
        name: "Nikhil Joshi",
    },
    Student {
        id: "student-tara",
        name: "Tara Fernandes",
    },
    Student {
        id: "student-yusuf",
        name: "Yusuf Ali",
    },
    Student {
        id: "student-lakshmi",
        name: "Lakshmi Krishnan",
    },
];

/// A notification template; `{topic}` and `{n}` in the texts are filled in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NotificationTemplate {
    /// Title, with placeholders.
    pub title: &'static str,
    /// Text, with placeholders.
    pub message: &'static str,
    /// Kind of notification.
    pub kind: NotificationKind,
    /// Urgency.
    pub priority: Priority,
    /// Where the action leads, if there is one.
    pub action_url: Option<&'static str>,
    /// The action's label.
    pub action_text: Option<&'static str>,
}

impl NotificationTemplate {
    /// The notification `id` made of this template, with `{topic}` and `{n}` filled in.
    ///
    /// ```
    /// use cerebrum_mock::curriculum::NOTIFICATIONS;
    /// let quiz = NOTIFICATIONS[1].render("q-1", "Evolution", 42);
    /// assert_eq!(quiz.message, "You scored 42/45 on the Evolution practice quiz.");
    /// ```
    #[must_use]
    pub fn render(&self, id: &str, topic: &str, n: u32) -> Notification {
        let n = n.to_string();
        let fill = |text: &str| text.replace("{topic}", topic).replace("{n}", &n);
        Notification {
            id: id.to_owned(),
            title: fill(self.title),
            message: fill(self.message),
            kind: self.kind,
            priority: self.priority,
            action_url: self.action_url.map(str::to_owned),
            action_text: self.action_text.map(str::to_owned),
        }
    }
}

/// Notifications a learning platform sends: achievements, messages, reminders, notices.
pub const NOTIFICATIONS: &[NotificationTemplate] = &[
    NotificationTemplate {
        title: "Streak extended",
        message: "{n} days in a row. Keep the streak alive tomorrow!",
        kind: NotificationKind::Success,
        priority: Priority::Medium,
        action_url: Some("/progress"),
        action_text: Some("See progress"),
    },
    NotificationTemplate {
        title: "Quiz result",
        message: "You scored {n}/45 on the {topic} practice quiz.",
        kind: NotificationKind::Info,
        priority: Priority::Medium,
        action_url: Some("/quizzes/latest"),
        action_text: Some("Review answers"),
    },
    NotificationTemplate {
        title: "New message from your mentor",
        message: "Dr. Rao replied to your question on {topic}.",
        kind: NotificationKind::Info,
        priority: Priority::High,
        action_url: Some("/messages"),
        action_text: Some("Open"),
    },
    NotificationTemplate {
        title: "Study reminder",
        message: "Your daily goal is {n}% done. A short session on {topic}?",
        kind: NotificationKind::Warning,
        priority: Priority::Low,
        action_url: Some("/study"),
        action_text: Some("Start studying"),
    },
    NotificationTemplate {
        title: "Achievement unlocked",
        message: "Chapter master: you finished every exercise of {topic}.",
        kind: NotificationKind::Success,
        priority: Priority::High,
        action_url: Some("/achievements"),
        action_text: Some("View badge"),
    },
    NotificationTemplate {
        title: "Live class starting",
        message: "The doubt-clearing class on {topic} starts in {n} minutes.",
        kind: NotificationKind::Info,
        priority: Priority::High,
        action_url: Some("/live"),
        action_text: Some("Join"),
    },
    NotificationTemplate {
        title: "Scheduled maintenance",
        message: "The platform will be read-only for {n} minutes tonight at 02:00 IST.",
        kind: NotificationKind::Warning,
        priority: Priority::Low,
        action_url: None,
        action_text: None,
    },
    NotificationTemplate {
        title: "Upload failed",
        message: "Your notes on {topic} could not be saved. Please try again.",
        kind: NotificationKind::Error,
        priority: Priority::Medium,
        action_url: Some("/notes"),
        action_text: Some("Retry"),
    },
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_topic_has_a_session_channel_and_students_are_unique() {
        for topic in TOPICS {
            cerebrum_protocol::session_channel(topic).unwrap();
        }
        let mut ids: Vec<_> = STUDENTS.iter().map(|s| s.id).collect();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), STUDENTS.len());
        for student in STUDENTS {
            cerebrum_protocol::user_channel(student.id).unwrap();
        }
    }
}
