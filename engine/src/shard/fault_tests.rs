//! Fault-tolerance tests: panics, monitors, links, the control lane, shedding, deadlines,
//! timers and the dead-letter subscriber, on shards driven pass by pass.
