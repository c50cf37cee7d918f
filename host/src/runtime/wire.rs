//! [`WireSize`]: the bytes a returned value carries (strings, lists), for the return-size
//! limit. Counted on the converted value: a cheap walk, no serialisation.

use crate::hcc::{IdeaVerdict, KnowledgeUnit, TaskDescriptor, WisdomEntry};
use crate::run_context::Outcome;
use crate::task::{GradeResult, Metric, TaskInfo, Validation};

pub trait WireSize {
    fn wire_size(&self) -> usize;
}

impl WireSize for String {
    fn wire_size(&self) -> usize {
        self.len()
    }
}

impl<T: WireSize> WireSize for Option<T> {
    fn wire_size(&self) -> usize {
        self.as_ref().map_or(0, WireSize::wire_size)
    }
}

impl<T: WireSize> WireSize for Vec<T> {
    fn wire_size(&self) -> usize {
        self.iter().map(WireSize::wire_size).sum::<usize>() + self.len() * 8
    }
}

macro_rules! strings {
    ($t:ty { $($f:ident),* }) => {
        impl WireSize for $t {
            fn wire_size(&self) -> usize {
                0 $(+ self.$f.wire_size())*
            }
        }
    };
}

strings!(Outcome { best_node, summary });
strings!(Metric { name, description });
strings!(TaskInfo {
    competition_id,
    title,
    description,
    metric,
    submission_format,
    data_preview,
    public_files,
    sample_submission
});
strings!(Validation { message });
strings!(GradeResult { message });
strings!(TaskDescriptor {
    modality,
    task_type,
    metric,
    data_size,
    summary
});
strings!(WisdomEntry {
    category,
    content,
    applies_when
});
strings!(IdeaVerdict { idea, note });
strings!(KnowledgeUnit {
    summary,
    verdicts,
    failure_causes,
    insights,
    best_approach
});
