-- Spoke & Chain bicycle workshop: mechanics and the repairs assigned to them
CREATE TABLE mechanics (
  id INTEGER PRIMARY KEY,
  name TEXT NOT NULL,
  specialty TEXT NOT NULL,
  years_experience INTEGER NOT NULL,
  hourly_rate REAL NOT NULL
);
CREATE TABLE repairs (
  id INTEGER PRIMARY KEY,
  mechanic_id INTEGER NOT NULL REFERENCES mechanics(id),
  customer TEXT NOT NULL,
  bike_type TEXT NOT NULL,
  hours REAL NOT NULL,
  parts_cost REAL NOT NULL,
  status TEXT NOT NULL
);
INSERT INTO mechanics (id, name, specialty, years_experience, hourly_rate) VALUES (1, 'Ines Okafor', 'wheels', 7, 32.5);
INSERT INTO mechanics (id, name, specialty, years_experience, hourly_rate) VALUES (2, 'Tomas Berg', 'brakes', 3, 24.0);
INSERT INTO mechanics (id, name, specialty, years_experience, hourly_rate) VALUES (3, 'Priya Nair', 'electric drives', 11, 41.0);
INSERT INTO mechanics (id, name, specialty, years_experience, hourly_rate) VALUES (4, 'Luca Moretti', 'gears', 5, 28.75);
INSERT INTO mechanics (id, name, specialty, years_experience, hourly_rate) VALUES (5, 'Hanna Lindqvist', 'frames', 9, 36.0);
INSERT INTO repairs (id, mechanic_id, customer, bike_type, hours, parts_cost, status) VALUES (1, 1, 'Mara Quist', 'road', 1.5, 18.4, 'done');
INSERT INTO repairs (id, mechanic_id, customer, bike_type, hours, parts_cost, status) VALUES (2, 3, 'Oskar Pell', 'e-bike', 3.0, 120.0, 'done');
INSERT INTO repairs (id, mechanic_id, customer, bike_type, hours, parts_cost, status) VALUES (3, 2, 'Jun Park', 'city', 0.75, 9.9, 'done');
INSERT INTO repairs (id, mechanic_id, customer, bike_type, hours, parts_cost, status) VALUES (4, 3, 'Aylin Demir', 'e-bike', 2.5, 64.5, 'waiting');
INSERT INTO repairs (id, mechanic_id, customer, bike_type, hours, parts_cost, status) VALUES (5, 4, 'Felix Braun', 'mountain', 2.0, 35.0, 'done');
INSERT INTO repairs (id, mechanic_id, customer, bike_type, hours, parts_cost, status) VALUES (6, 1, 'Rosa Vidal', 'road', 1.0, 0.0, 'open');
INSERT INTO repairs (id, mechanic_id, customer, bike_type, hours, parts_cost, status) VALUES (7, 5, 'Mara Quist', 'gravel', 4.0, 210.0, 'waiting');
