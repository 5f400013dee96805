//! The built-in tool-using agent loop used by the API drivers: tools,
//! workspace confinement, budgets.
