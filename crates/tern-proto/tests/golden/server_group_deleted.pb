ย<8
x1
Lunch crewalice"alice*alice*bob*carol0เสัช3