pub mod logistic;
