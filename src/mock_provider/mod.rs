//! The scripted provider server (`llm-orchestrate mock-provider`): speaks the
//! providers' wire formats and plays a script, for offline tests of plans.
